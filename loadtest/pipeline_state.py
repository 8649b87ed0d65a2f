"""Reads of the pipeline's state that reconciliation and the report compare against the
client's ledger: the consumer group's backlog in Redis and the recorded votes in Postgres."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from redis.exceptions import ResponseError

from ingest.redisclients import AnyRedis
from loadtest.ledger import AcceptedVote, EntryId
from votecontract.names import StreamNames


@dataclass(frozen=True, slots=True)
class Backlog:
    """`lag` is None when Redis reports NULL (or the group is missing): unknown, not zero."""

    lag: int | None
    pending: int
    group_exists: bool

    @property
    def drained(self) -> bool:
        return self.group_exists and self.lag == 0 and self.pending == 0


@dataclass(frozen=True, slots=True)
class Ballot:
    option: str
    entry_id: EntryId


@dataclass(frozen=True, slots=True)
class Latency:
    """Acceptance (ingest) to recording (Postgres) time of a set of votes, in milliseconds."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


async def read_backlog(redis: AnyRedis, names: StreamNames) -> Backlog:
    try:
        groups = await redis.xinfo_groups(names.stream)
    except ResponseError:  # no such key: the stream is gone
        return Backlog(lag=None, pending=0, group_exists=False)
    for group in groups:
        if group["name"] == names.group:
            lag = group.get("lag")
            return Backlog(None if lag is None else int(lag), int(group["pending"]), True)
    return Backlog(lag=None, pending=0, group_exists=False)


async def wait_until_drained(
    redis: AnyRedis, names: StreamNames, timeout_s: float, poll_s: float = 0.2
) -> Backlog:
    """Poll until nothing is undelivered or unacked, or the timeout passed; the last reading."""
    deadline = time.monotonic() + timeout_s
    backlog = await read_backlog(redis, names)
    while not backlog.drained and time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
        backlog = await read_backlog(redis, names)
    return backlog


async def wait_until_all_drained(
    redis: AnyRedis, shards: Sequence[StreamNames], timeout_s: float
) -> Backlog:
    """Every shard's backlog drained within `timeout_s` in all; their sum (a shard without its
    group makes the whole unknown)."""
    deadline = time.monotonic() + timeout_s
    lag: int | None = 0
    pending, exists = 0, True
    for names in shards:
        left = max(deadline - time.monotonic(), 0.0)
        backlog = await wait_until_drained(redis, names, left)
        lag = None if lag is None or backlog.lag is None else lag + backlog.lag
        pending += backlog.pending
        exists = exists and backlog.group_exists
    return Backlog(lag, pending, exists)


def _id_arrays(votes: Sequence[AcceptedVote]) -> tuple[list[int], list[int]]:
    return [v.entry_id.ms for v in votes], [v.entry_id.seq for v in votes]


async def recorded_events(
    conn: asyncpg.Connection, votes: Sequence[AcceptedVote], voter_prefix: str
) -> list[AcceptedVote]:
    """Every vote_events row of the run: those with an accepted ID or a voter of the run.
    A row appears as often as it is stored, so duplicates (without the primary key) show."""
    ms, seq = _id_arrays(votes)
    rows = await conn.fetch(
        """
        SELECT e.entry_ms, e.entry_seq, e.voter_id, e.option FROM vote_events e
        WHERE starts_with(e.voter_id, $3)
           OR (e.entry_ms, e.entry_seq) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))
        """,
        ms,
        seq,
        voter_prefix,
    )
    return [AcceptedVote(EntryId(r[0], r[1]), r[2], r[3]) for r in rows]


async def dead_letter_reasons(
    conn: asyncpg.Connection, ids: Sequence[EntryId]
) -> dict[EntryId, str]:
    rows = await conn.fetch(
        """
        SELECT a.ms, a.seq, d.reason FROM dead_letters d
        JOIN unnest($1::bigint[], $2::bigint[]) AS a(ms, seq)
          ON d.entry_ms = a.ms AND d.entry_seq = a.seq
        """,
        [i.ms for i in ids],
        [i.seq for i in ids],
    )
    return {EntryId(r[0], r[1]): r[2] for r in rows}


async def ballots_of(conn: asyncpg.Connection, voter_prefix: str) -> dict[str, Ballot]:
    rows = await conn.fetch(
        "SELECT voter_id, option, entry_ms, entry_seq FROM ballots WHERE starts_with(voter_id, $1)",
        voter_prefix,
    )
    return {r[0]: Ballot(r[1], EntryId(r[2], r[3])) for r in rows}


async def tally(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT option, votes FROM tally")
    return {r[0]: int(r[1]) for r in rows}


async def ballot_counts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT option, count(*) FROM ballots GROUP BY option")
    return {r[0]: int(r[1]) for r in rows}


async def e2e_latency(conn: asyncpg.Connection, votes: Sequence[AcceptedVote]) -> Latency:
    ms, seq = _id_arrays(votes)
    row = await conn.fetchrow(
        """
        WITH l AS (
            SELECT extract(epoch FROM e.recorded_at - e.accepted_at) * 1000 AS ms
            FROM vote_events e JOIN unnest($1::bigint[], $2::bigint[]) AS a(ms, seq)
              ON e.entry_ms = a.ms AND e.entry_seq = a.seq)
        SELECT count(*), percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms),
               max(ms)
        FROM l
        """,
        ms,
        seq,
    )
    assert row is not None  # an aggregate always returns one row
    p50, p95, p99 = (float(q) for q in (row[1] or [0.0, 0.0, 0.0]))
    return Latency(int(row[0]), p50, p95, p99, float(row[2] or 0.0))
