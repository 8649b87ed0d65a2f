"""What ingest reads from PostgreSQL for the pipeline metrics, on the real server: rows inserted
per the statistics, ballots, and the newest recorded vote's accepted-to-recorded time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ingest.pipelinemetrics.database import DatabaseReading, NewestVote, read_database
from ingest.readside.database import Database, DatabaseUnavailableError
from tests.support.databases import migrated_database, private_database

ACCEPTED = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def fresh_database_url() -> Iterator[str]:
    """A database of this module's own: PostgreSQL's insert statistics count from 0 here."""
    with migrated_database("pipeline_metrics") as url:
        yield url


@pytest.fixture
async def database(fresh_database_url: str) -> AsyncIterator[Database]:
    database = Database(fresh_database_url, timeout_s=5)
    await database.open()
    yield database
    await database.close()


async def flush_statistics(conn: asyncpg.Connection) -> None:
    """This backend's pending statistics reach the shared ones when the call returns
    (PostgreSQL flushes them before it reports the backend ready for the next query)."""
    await conn.execute("SELECT pg_stat_force_next_flush()")


async def record(conn: asyncpg.Connection, ms: int, latency_s: float) -> None:
    await conn.execute(
        "INSERT INTO vote_events (entry_ms, entry_seq, option, voter_id, accepted_at,"
        " recorded_at) VALUES ($1, 0, 'cats', $2, $3, $4)",
        ms, f"voter-{ms}", ACCEPTED, ACCEPTED + timedelta(seconds=latency_s),
    )  # fmt: skip


async def test_counts_ballots_and_the_newest_vote(
    database: Database, fresh_database_url: str
) -> None:
    assert await read_database(database) == DatabaseReading(0, 0, 0, None)
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await record(conn, 2000, 1.5)  # the highest stream ID: the newest vote
        await record(conn, 1000, 90.0)  # recorded later (say, claimed after a crash)
        await conn.execute("INSERT INTO tally (option, votes) VALUES ('cats', 2), ('dogs', 1)")
        await conn.execute(
            "INSERT INTO dead_letters (entry_ms, entry_seq, reason, fields)"
            " VALUES (500, 0, 'unknown option', '{}')"
        )
        await flush_statistics(conn)
    finally:
        await conn.close()
    reading = await read_database(database)
    newest = NewestVote(ACCEPTED, ACCEPTED + timedelta(seconds=1.5))
    assert reading == DatabaseReading(2, 1, 3, newest)
    assert reading.newest is not None
    assert reading.newest.latency_s == 1.5


@pytest.fixture
def unmigrated_database_url() -> Iterator[str]:
    with private_database("no_schema") as url:
        yield url


async def test_a_database_without_the_schema_is_unavailable(unmigrated_database_url: str) -> None:
    database = Database(unmigrated_database_url, timeout_s=5)
    await database.open()
    try:
        with pytest.raises(DatabaseUnavailableError):
            await read_database(database)
    finally:
        await database.close()
