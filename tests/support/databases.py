"""Private PostgreSQL databases for tests, on the real server: created per caller, dropped
afterwards, so no test touches a developer's running instance or another test's rows.

Each name carries the creating process's ID, so a run that was killed before its cleanup
(a timeout, Ctrl-C twice) leaves nothing behind for long: the next session drops every such
database whose creator is gone (`drop_orphaned_databases`).
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg

from processor.migrate import migrate

TEST_PG_ADMIN_URL = os.environ.get(
    "TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


# vote_test_<label>_<pid>_<8 hex> (private_database) and vote_cluster_<label>_<pid>
# (tests.support.cluster, which also makes the roles <name>_migrator and <name>_app).
_ORPHAN_CANDIDATE = re.compile(r"vote_test_.+_(\d+)_[0-9a-f]{8}|vote_cluster_.+_(\d+)")
_ADMIN_CONNECT_TIMEOUT_S = 5.0


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


def process_alive(pid: int) -> bool:
    """Whether a process with this ID exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def drop_orphaned_databases(alive: Callable[[int], bool] = process_alive) -> list[str]:
    """Drop the test databases (and a cluster database's roles) whose creating process is
    gone; return their names. A live creator's are kept, whoever it is: another session
    running alongside, or a process that reused a dead creator's ID (dropped a run later)."""
    conn = await asyncpg.connect(TEST_PG_ADMIN_URL, timeout=_ADMIN_CONNECT_TIMEOUT_S)
    try:
        names = await conn.fetch("SELECT datname FROM pg_database ORDER BY datname")
        dropped = []
        for (name,) in names:
            match = _ORPHAN_CANDIDATE.fullmatch(name)
            if match is None or alive(int(match[1] or match[2])):
                continue
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'DROP ROLE IF EXISTS "{name}_migrator", "{name}_app"')
            dropped.append(name)
        return dropped
    finally:
        await conn.close()
