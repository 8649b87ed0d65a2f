"""Private PostgreSQL databases for tests, on the real server: created per caller, dropped
afterwards, so no test touches a developer's running instance or another test's rows."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg

from processor.migrate import migrate

TEST_PG_ADMIN_URL = os.environ.get(
    "TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def dsn_with_database(admin_url: str, database: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{database}"


async def admin_execute(sql: str) -> None:
    conn = await asyncpg.connect(TEST_PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def private_database(label: str) -> Iterator[str]:
    """An empty database of the caller's own, dropped at the end."""
    name = f"vote_test_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield dsn_with_database(TEST_PG_ADMIN_URL, name)
    finally:
        asyncio.run(admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def migrated_database(label: str) -> Iterator[str]:
    """A private database with the processor's migrations applied. Tests that record votes
    use one: `pg_database_url` must stay empty for others, and entry IDs of different test
    streams may coincide."""
    with private_database(label) as url:
        asyncio.run(migrate(url))
        yield url


VOTE_TABLES = "vote_events, ballots, tally, dead_letters"


async def empty_vote_tables(conn: asyncpg.Connection) -> None:
    await conn.execute(f"TRUNCATE {VOTE_TABLES}")


@asynccontextmanager
async def emptied_vote_database(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a migrated database whose vote tables were just emptied."""
    conn = await asyncpg.connect(url)
    try:
        await empty_vote_tables(conn)
        yield conn
    finally:
        await conn.close()
