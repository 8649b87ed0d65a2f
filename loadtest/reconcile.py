"""Reconciliation of a load-test run: after the backlog drained, every vote ingest accepted
is recorded exactly once, each voter's ballot is their last accepted vote by stream ID, and
the tally counts exactly those ballots.

    python -m loadtest.reconcile snapshot BASELINE.json   # before the run: the tally
    python -m loadtest.reconcile check LEDGER.json [--baseline BASELINE.json]

`check` exits 1 and prints each mismatch when the promise was broken. Settings come from the
pipeline's own variables: REDIS_URL, DATABASE_URL, VOTE_STREAM, VOTE_GROUP, and REDIS_MODE (with
its sentinel variables) and VOTE_SHARDS: the backlog must be drained on every shard.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg

from ingest.redisclients import command_client
from loadtest import pipeline_state as state
from loadtest.ledger import AcceptedVote, EntryId, Ledger, read_ledger
from votecontract.environment import Environ, process_environ
from votecontract.names import (
    StreamNames,
)
from votecontract.shared_env import database_url, redis_topology, redis_url, stream_names
from votecontract.topology import RedisTopology

SHOWN_PER_CHECK = 20


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    redis_url: str = field(repr=False)  # the URLs hold credentials
    database_url: str = field(repr=False)
    names: StreamNames
    topology: RedisTopology = field(default_factory=RedisTopology)

    @classmethod
    def from_environ(cls, env: Environ) -> ReconcileSettings:
        return cls(
            redis_url=redis_url(env),
            database_url=database_url(env),
            names=stream_names(env),
            topology=redis_topology(env),
        )


@dataclass(frozen=True, slots=True)
class Observed:
    """What the pipeline holds for one run, read after the backlog drained (or timed out)."""

    backlog: state.Backlog
    events: list[AcceptedVote]
    dead_letters: dict[EntryId, str]
    ballots: dict[str, state.Ballot]
    tally: dict[str, int]
    ballot_counts: dict[str, int]


@dataclass(slots=True)
class Outcome:
    mismatches: list[str] = field(default_factory=list)
    recorded: int = 0
    unconfirmed: int = 0
    voters: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches


def expected_ballots(votes: Iterable[AcceptedVote]) -> dict[str, state.Ballot]:
    """Each voter's last vote by stream ID: the order ingest accepted them in."""
    best: dict[str, state.Ballot] = {}
    for vote in votes:
        current = best.get(vote.voter_id)
        if current is None or vote.entry_id > current.entry_id:
            best[vote.voter_id] = state.Ballot(vote.option, vote.entry_id)
    return best


def check_events(ledger: Ledger, observed: Observed, outcome: Outcome) -> list[AcceptedVote]:
    """Accepted votes against vote_events; returns the run's events that no 202 confirmed."""
    stored: defaultdict[EntryId, list[AcceptedVote]] = defaultdict(list)
    for event in observed.events:
        stored[event.entry_id].append(event)
    answered = Counter(vote.entry_id for vote in ledger.votes)
    outcome.mismatches += [f"{i}: answered 202 {n} times" for i, n in answered.items() if n > 1]
    for vote in ledger.votes:
        rows = stored.get(vote.entry_id, [])
        if not rows:
            reason = observed.dead_letters.get(vote.entry_id)
            where = f"dead-lettered ({reason})" if reason else "not in vote_events"
            outcome.mismatches.append(f"{vote.entry_id}: accepted but {where}")
        elif rows != [vote]:
            outcome.mismatches.append(f"{vote.entry_id}: accepted {vote}, recorded {rows}")
    unconfirmed = [rows[0] for i, rows in stored.items() if i not in answered]
    outcome.mismatches += [
        f"{i}: recorded {len(rows)} times" for i, rows in stored.items() if len(rows) > 1
    ]
    outcome.recorded = len(stored)
    outcome.unconfirmed = len(unconfirmed)
    if len(unconfirmed) > ledger.uncertain:
        outcome.mismatches.append(
            f"{len(unconfirmed)} votes of this run's voters recorded without a 202, but only"
            f" {ledger.uncertain} requests had an unknown outcome"
        )
    return unconfirmed


def check_ballots(
    expected: Mapping[str, state.Ballot], actual: Mapping[str, state.Ballot], outcome: Outcome
) -> None:
    for voter_id in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(voter_id), actual.get(voter_id)
        if want != got:
            outcome.mismatches.append(f"ballot of {voter_id}: expected {want}, found {got}")
    outcome.voters = len(expected)


def check_tally(
    expected: Mapping[str, state.Ballot],
    observed: Observed,
    baseline: Mapping[str, int],
    outcome: Outcome,
) -> None:
    """The tally grew by exactly the run's ballots, and equals all ballots counted."""
    want = Counter(ballot.option for ballot in expected.values())
    for option in sorted(want.keys() | observed.tally.keys() | baseline.keys()):
        grew = observed.tally.get(option, 0) - baseline.get(option, 0)
        if grew != want[option]:
            outcome.mismatches.append(
                f"tally of {option!r} grew by {grew}, the run's ballots count {want[option]}"
            )
    for option in sorted(observed.tally.keys() | observed.ballot_counts.keys()):
        votes, ballots = observed.tally.get(option, 0), observed.ballot_counts.get(option, 0)
        if votes != ballots:
            outcome.mismatches.append(f"tally of {option!r} is {votes}, ballots count {ballots}")


def find_mismatches(ledger: Ledger, observed: Observed, baseline: Mapping[str, int]) -> Outcome:
    outcome = Outcome()
    backlog = observed.backlog
    if not backlog.drained:
        outcome.mismatches.append(
            f"backlog not drained: lag={backlog.lag} pending={backlog.pending}"
            f" group_exists={backlog.group_exists}"
        )
    unconfirmed = check_events(ledger, observed, outcome)
    expected = expected_ballots([*ledger.votes, *unconfirmed])
    check_ballots(expected, observed.ballots, outcome)
    check_tally(expected, observed, baseline, outcome)
    return outcome


async def observe(
    settings: ReconcileSettings, ledger: Ledger, timeout_s: float
) -> tuple[Observed, state.Latency]:
    redis = command_client(settings.redis_url, settings.topology, decode_responses=True)
    try:
        shards = settings.topology.streams(settings.names)
        backlog = await state.wait_until_all_drained(redis, shards, timeout_s)
    finally:
        await redis.aclose()
    conn = await asyncpg.connect(settings.database_url)
    try:
        events = await state.recorded_events(conn, ledger.votes, ledger.voter_prefix)
        recorded = {event.entry_id for event in events}
        missing = [v.entry_id for v in ledger.votes if v.entry_id not in recorded]
        observed = Observed(
            backlog=backlog,
            events=events,
            dead_letters=await state.dead_letter_reasons(conn, missing),
            ballots=await state.ballots_of(conn, ledger.voter_prefix),
            tally=await state.tally(conn),
            ballot_counts=await state.ballot_counts(conn),
        )
        return observed, await state.e2e_latency(conn, ledger.votes)
    finally:
        await conn.close()


def print_summary(ledger: Ledger, outcome: Outcome, latency: state.Latency) -> None:
    print(f"reconciliation of run {ledger.run_id}")
    print(f"  votes accepted (202)      {len(ledger.votes)}")
    print(f"  recorded in vote_events   {outcome.recorded} ({outcome.unconfirmed} without a 202)")
    print(f"  503 backpressure answers  {ledger.backpressure}")
    print(f"  failed requests           {ledger.failures} ({ledger.uncertain} unknown outcome)")
    print(f"  voters / ballots checked  {outcome.voters}")
    print(
        f"  e2e latency ms            p50 {latency.p50_ms:.0f}  p95 {latency.p95_ms:.0f}"
        f"  p99 {latency.p99_ms:.0f}  max {latency.max_ms:.0f}"
    )
    for line in outcome.mismatches[:SHOWN_PER_CHECK]:
        print(f"  MISMATCH {line}")
    if len(outcome.mismatches) > SHOWN_PER_CHECK:
        print(f"  ... and {len(outcome.mismatches) - SHOWN_PER_CHECK} more mismatches")
    verdict = "OK" if outcome.ok else f"FAILED ({len(outcome.mismatches)} mismatches)"
    print(f"  result                    {verdict}")


async def check(args: argparse.Namespace, settings: ReconcileSettings) -> int:
    ledger = read_ledger(args.ledger)
    baseline: dict[str, int] = {}
    if args.baseline is not None:
        baseline = json.loads(args.baseline.read_text(encoding="utf-8"))["tally"]
    observed, latency = await observe(settings, ledger, args.timeout)
    outcome = find_mismatches(ledger, observed, baseline)
    print_summary(ledger, outcome, latency)
    if args.json_out is not None:
        summary = {"ok": outcome.ok, "mismatches": len(outcome.mismatches)}
        summary |= {"accepted": len(ledger.votes), "recorded": outcome.recorded}
        summary |= {"backpressure": ledger.backpressure, "failures": ledger.failures}
        summary |= {"uncertain": ledger.uncertain}
        args.json_out.write_text(json.dumps(summary | {"latency": asdict(latency)}, indent=2))
    return 0 if outcome.ok else 1


async def snapshot(args: argparse.Namespace, settings: ReconcileSettings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        counts = await state.tally(conn)
    finally:
        await conn.close()
    args.out.write_text(json.dumps({"tally": counts}), encoding="utf-8")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.reconcile", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    snap = commands.add_parser("snapshot", help="save the tally before a run")
    snap.add_argument("out", type=Path)
    chk = commands.add_parser("check", help="reconcile a run's ledger with the pipeline")
    chk.add_argument("ledger", type=Path)
    chk.add_argument("--baseline", type=Path, help="tally snapshot taken before the run")
    chk.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for drain")
    chk.add_argument("--json-out", type=Path, help="also write the summary as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = ReconcileSettings.from_environ(process_environ())
    command = check if args.command == "check" else snapshot
    return asyncio.run(command(args, settings))


if __name__ == "__main__":
    sys.exit(main())
