"""Reconciliation against real Redis and Postgres: it passes for a correct processor and
fails for each deliberately broken one (test-only faults, never in the product code)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from loadtest import reconcile
from loadtest.ledger import AcceptedVote, EntryId, Ledger, write_ledger
from loadtest.pipeline_state import Backlog, Ballot
from tests.support.databases import emptied_vote_database, migrated_database
from votecontract.names import FIELD_ACCEPTED_MS, FIELD_OPTION, FIELD_VOTER_ID, StreamNames

FAULTS = ("skip_ack", "skip_ballot", "count_twice", "drop_entry", "dead_letter")


@pytest.fixture(scope="module")
def vote_db_url() -> Iterator[str]:
    with migrated_database("reconcile") as url:
        yield url


@pytest.fixture
async def vote_db(vote_db_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with emptied_vote_database(vote_db_url) as conn:
        yield conn


async def record_vote(
    conn: asyncpg.Connection, entry_id: str, fields: dict[str, str], fault: str | None
) -> None:
    ms, seq = (int(part) for part in entry_id.split("-"))
    option, voter_id = fields[FIELD_OPTION], fields[FIELD_VOTER_ID]
    inserted = await conn.fetchval(
        "INSERT INTO vote_events (entry_ms, entry_seq, option, voter_id, accepted_at)"
        " VALUES ($1, $2, $3, $4, to_timestamp($5::bigint / 1000.0))"
        " ON CONFLICT DO NOTHING RETURNING true",
        ms,
        seq,
        option,
        voter_id,
        int(fields[FIELD_ACCEPTED_MS]),
    )
    if not inserted or fault == "skip_ballot":
        return
    old = await conn.fetchrow(
        "SELECT option, entry_ms, entry_seq FROM ballots WHERE voter_id = $1 FOR UPDATE", voter_id
    )
    if old is not None and (old[1], old[2]) > (ms, seq):
        return
    await conn.execute(
        "INSERT INTO ballots (voter_id, option, entry_ms, entry_seq) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (voter_id) DO UPDATE SET option = $2, entry_ms = $3, entry_seq = $4",
        voter_id,
        option,
        ms,
        seq,
    )
    if old is not None:
        await conn.execute("UPDATE tally SET votes = votes - 1 WHERE option = $1", old[0])
    await conn.execute(
        "INSERT INTO tally (option, votes) VALUES ($1, $2)"
        " ON CONFLICT (option) DO UPDATE SET votes = tally.votes + $2",
        option,
        2 if fault == "count_twice" else 1,
    )


async def dead_letter(conn: asyncpg.Connection, entry_id: str, fields: dict[str, str]) -> None:
    ms, seq = (int(part) for part in entry_id.split("-"))
    await conn.execute(
        "INSERT INTO dead_letters (entry_ms, entry_seq, reason, fields) VALUES ($1, $2, $3, $4)",
        ms,
        seq,
        "test fault",
        json.dumps(fields),
    )


async def drain_with_fault(
    redis: aioredis.Redis, conn: asyncpg.Connection, names: StreamNames, fault: str | None
) -> None:
    """A minimal drain of the stream with one optional, deliberate fault."""
    while reply := await redis.xreadgroup(names.group, "tester", {names.stream: ">"}, count=7):
        entries = reply[0][1]
        async with conn.transaction():
            for entry_id, fields in entries:
                if fault in ("drop_entry", "dead_letter") and entry_id == entries[-1][0]:
                    if fault == "dead_letter":
                        await dead_letter(conn, entry_id, fields)
                    continue
                await record_vote(conn, entry_id, fields, fault)
        if fault != "skip_ack":
            await redis.xack(names.stream, names.group, *(entry_id for entry_id, _ in entries))


async def accept_votes(redis: aioredis.Redis, names: StreamNames, run: str) -> Ledger:
    """What ingest would do for 10 voters voting 3 times (odd ones change their vote)."""
    if not await redis.exists(names.stream):
        await redis.xgroup_create(names.stream, names.group, id="0", mkstream=True)
    votes = []
    for turn in range(3):
        for n in range(10):
            voter_id, option = f"lt-{run}-{n}", ("cats", "dogs", "birds")[(n + turn * (n % 2)) % 3]
            fields = {
                FIELD_OPTION: option,
                FIELD_VOTER_ID: voter_id,
                FIELD_ACCEPTED_MS: str(time.time_ns() // 1_000_000),
            }
            entry_id = await redis.xadd(names.stream, fields)  # type: ignore[arg-type]
            votes.append(AcceptedVote(EntryId.parse(entry_id), voter_id, option))
    return Ledger(run_id=run, voter_prefix=f"lt-{run}-", votes=tuple(votes))


@pytest.fixture
def settings(
    redis_url: str, vote_db_url: str, stream_names: StreamNames
) -> reconcile.ReconcileSettings:
    return reconcile.ReconcileSettings(redis_url, vote_db_url, stream_names)


async def run_check(
    settings: reconcile.ReconcileSettings, ledger: Ledger, tmp_path: Path, drain_wait_s: float = 5
) -> int:
    write_ledger(tmp_path / "ledger.json", ledger)
    args = reconcile.parse_args(
        ["check", str(tmp_path / "ledger.json"), "--timeout", str(drain_wait_s)]
    )
    return await reconcile.check(args, settings)


async def test_cli_passes_a_correct_run_on_top_of_earlier_data(
    redis_client: aioredis.Redis,
    vote_db: asyncpg.Connection,
    stream_names: StreamNames,
    settings: reconcile.ReconcileSettings,
    tmp_path: Path,
) -> None:
    await accept_votes(redis_client, stream_names, "earlier")
    await drain_with_fault(redis_client, vote_db, stream_names, None)
    env = {
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": settings.database_url,
        "VOTE_STREAM": stream_names.stream,
        "VOTE_GROUP": stream_names.group,
    }
    snapshot = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loadtest.reconcile",
        "snapshot",
        str(tmp_path / "base.json"),
        env=os.environ | env,
    )
    assert await snapshot.wait() == 0
    ledger = await accept_votes(redis_client, stream_names, "now")
    await drain_with_fault(redis_client, vote_db, stream_names, None)
    write_ledger(tmp_path / "ledger.json", ledger)
    check = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loadtest.reconcile",
        "check",
        str(tmp_path / "ledger.json"),
        "--baseline",
        str(tmp_path / "base.json"),
        "--json-out",
        str(tmp_path / "summary.json"),
        env=os.environ | env,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await check.communicate()
    assert check.returncode == 0, output.decode()
    assert "result                    OK" in output.decode()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ok"]
    assert summary["accepted"] == summary["recorded"] == len(ledger.votes)


@pytest.mark.parametrize("fault", FAULTS)
async def test_check_fails_for_a_broken_processor(
    redis_client: aioredis.Redis,
    vote_db: asyncpg.Connection,
    stream_names: StreamNames,
    settings: reconcile.ReconcileSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fault: str,
) -> None:
    ledger = await accept_votes(redis_client, stream_names, "broken")
    await drain_with_fault(redis_client, vote_db, stream_names, fault)
    assert await run_check(settings, ledger, tmp_path, drain_wait_s=0.5) == 1
    expected = {
        "skip_ack": "backlog not drained: lag=0 pending=30",
        "skip_ballot": "ballot of lt-broken-0: expected Ballot",
        "count_twice": "tally of 'cats' is",
        "drop_entry": "accepted but not in vote_events",
        "dead_letter": "accepted but dead-lettered (test fault)",
    }[fault]
    assert expected in capsys.readouterr().out


async def test_check_fails_for_a_vote_recorded_twice(
    redis_client: aioredis.Redis,
    vote_db: asyncpg.Connection,
    stream_names: StreamNames,
    settings: reconcile.ReconcileSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Double-inserting needs a table without its key: the test drops it, then restores it."""
    ledger = await accept_votes(redis_client, stream_names, "twice")
    await drain_with_fault(redis_client, vote_db, stream_names, None)
    await vote_db.execute("ALTER TABLE vote_events DROP CONSTRAINT vote_events_pkey")
    try:
        await vote_db.execute(
            "INSERT INTO vote_events"
            " SELECT * FROM vote_events WHERE entry_ms = $1 AND entry_seq = $2",
            ledger.votes[0].entry_id.ms,
            ledger.votes[0].entry_id.seq,
        )
        assert await run_check(settings, ledger, tmp_path) == 1
    finally:
        await vote_db.execute("TRUNCATE vote_events")
        await vote_db.execute("ALTER TABLE vote_events ADD PRIMARY KEY (entry_ms, entry_seq)")
    assert f"{ledger.votes[0].entry_id}: recorded 2 times" in capsys.readouterr().out


def observed(
    events: list[AcceptedVote], ballots: dict[str, Ballot], tally: dict[str, int]
) -> reconcile.Observed:
    counts = {option: sum(b.option == option for b in ballots.values()) for option in tally}
    return reconcile.Observed(Backlog(0, 0, True), events, {}, ballots, tally, counts)


def test_expected_ballot_is_the_last_vote_by_stream_id_whatever_the_order() -> None:
    votes = [
        AcceptedVote(EntryId(7, 1), "a", "dogs"),
        AcceptedVote(EntryId(7, 0), "a", "cats"),
        AcceptedVote(EntryId(3, 0), "b", "cats"),
    ]
    assert reconcile.expected_ballots(votes) == {
        "a": Ballot("dogs", EntryId(7, 1)),
        "b": Ballot("cats", EntryId(3, 0)),
    }


@pytest.mark.parametrize(("uncertain", "ok"), [(0, False), (1, True)])
def test_votes_recorded_without_a_202_are_allowed_only_up_to_the_unknown_outcomes(
    uncertain: int, ok: bool
) -> None:
    """A request cut off at shutdown may still have been accepted: its vote counts."""
    accepted = AcceptedVote(EntryId(1, 0), "lt-x-1", "cats")
    unseen = AcceptedVote(EntryId(2, 0), "lt-x-1", "dogs")
    ledger = Ledger("x", "lt-x-", (accepted,), uncertain=uncertain)
    state = observed([accepted, unseen], {"lt-x-1": Ballot("dogs", EntryId(2, 0))}, {"dogs": 1})
    outcome = reconcile.find_mismatches(ledger, state, {})
    assert outcome.ok is ok
    assert (outcome.recorded, outcome.unconfirmed) == (2, 1)


def test_tally_must_grow_by_the_runs_ballots_over_the_baseline() -> None:
    vote = AcceptedVote(EntryId(1, 0), "lt-x-1", "cats")
    ledger = Ledger("x", "lt-x-", (vote,))
    state = observed([vote], {"lt-x-1": Ballot("cats", EntryId(1, 0))}, {"cats": 1})
    assert reconcile.find_mismatches(ledger, state, {"cats": 0}).ok
    outcome = reconcile.find_mismatches(ledger, state, {"cats": 1})
    assert outcome.mismatches == ["tally of 'cats' grew by 0, the run's ballots count 1"]
