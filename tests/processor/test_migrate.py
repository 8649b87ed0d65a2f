"""Migrations: in order, once each, safe to run twice and concurrently."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from processor import migrate as migrate_module
from processor.migrate import MIGRATION_LOCK_KEY, MigrationError, load_migrations, migrate
from processor.retry import Backoff, GiveUpError
from tests.support.databases import TEST_PG_ADMIN_URL, admin_execute, dsn_with_database
from tests.support.proxy import TcpProxy
from tests.support.servers import free_port

# What `migrate` logs while the database does not answer yet.
WAITING = "migrate the database"


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    name = f"vote_test_migrate_{uuid.uuid4().hex[:10]}"
    await admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield dsn_with_database(TEST_PG_ADMIN_URL, name)
    finally:
        await admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def applied_versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    return [row["version"] for row in rows]


def test_migration_files_are_numbered_in_order() -> None:
    versions = [migration.version for migration in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_running_twice_applies_each_migration_once(empty_database: str) -> None:
    everything = [migration.version for migration in load_migrations()]
    assert await migrate(empty_database) == everything
    assert await migrate(empty_database) == []
    assert await applied_versions(empty_database) == everything


async def test_concurrent_runs_take_turns(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database) for _ in range(4)))
    everything = [migration.version for migration in load_migrations()]
    assert sorted(results) == [[], [], [], everything]
    assert await applied_versions(empty_database) == everything


async def test_an_edited_applied_migration_is_refused(empty_database: str) -> None:
    await migrate(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        await migrate(empty_database)


def test_the_migrate_command_exits_zero(empty_database: str) -> None:
    env = {"DATABASE_URL": empty_database, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "processor", "migrate"], env=env, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert b"schema up to date" in done.stderr


def test_the_job_command_names_a_bad_setting() -> None:
    env = {"BATCH_SIZE": "none", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "processor"], env=env, capture_output=True, check=False
    )
    assert done.returncode == 2
    assert b"BATCH_SIZE" in done.stderr


async def _stderr_until(process: asyncio.subprocess.Process, text: str) -> list[str]:
    """Lines of the process's stderr up to the first holding `text` (all of them if it exits
    first)."""
    assert process.stderr is not None
    lines = []
    while line := (await process.stderr.readline()).decode():
        lines.append(line)
        if text in line:
            break
    return lines


async def test_migrate_waits_for_a_database_that_comes_up_late(empty_database: str) -> None:
    # The database's port has nothing listening until the migration has tried and waits.
    late = TcpProxy(5432)
    url = empty_database.replace("127.0.0.1:5432", f"127.0.0.1:{late.port}")
    env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "RETRY_BACKOFF_MS": "20"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "processor", "migrate", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        lines = await asyncio.wait_for(_stderr_until(process, WAITING), timeout=60)
        assert WAITING in lines[-1], lines
        await late.start()
        rest = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await late.cut()
    everything = [migration.version for migration in load_migrations()]
    assert await applied_versions(empty_database) == everything


def test_migrate_gives_up_when_the_database_never_comes() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/votes"
    env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "MIGRATE_WAIT_S": "0.2"}
    done = subprocess.run(
        [sys.executable, "-m", "processor", "migrate"],
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert b"migration failed" in done.stderr
    assert b"still failing" in done.stderr
    assert WAITING.encode() in done.stderr


# A wait that would hang without a bound fails the test here instead of at pytest's timeout.
HANG_GUARD_S = 60


def short_wait(budget_s: float) -> Backoff:
    return Backoff(0.05, 0.2, time.monotonic() + budget_s)


@pytest.fixture
def quick_lock_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrate_module, "LOCK_TIMEOUT_S", 0.2)


@pytest.fixture
async def blocker(empty_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A session left idle in a transaction (a crashed migrator, a half-open connection)."""
    await migrate(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.mark.usefixtures("quick_lock_timeout")
async def test_a_stuck_holder_of_the_migration_lock_costs_the_budget_not_forever(
    empty_database: str, blocker: asyncpg.Connection
) -> None:
    await blocker.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    with pytest.raises(GiveUpError):
        await asyncio.wait_for(migrate(empty_database, wait=short_wait(1.0)), HANG_GUARD_S)


@pytest.mark.usefixtures("quick_lock_timeout")
async def test_a_stuck_transaction_on_a_migrated_table_costs_the_budget_not_forever(
    empty_database: str, blocker: asyncpg.Connection
) -> None:
    await blocker.execute("BEGIN; LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
    with pytest.raises(GiveUpError):
        await asyncio.wait_for(migrate(empty_database, wait=short_wait(1.0)), HANG_GUARD_S)


@pytest.mark.usefixtures("quick_lock_timeout")
async def test_migrate_goes_on_once_the_stuck_transaction_ends(
    empty_database: str, blocker: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await blocker.execute("BEGIN; LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
    running = asyncio.ensure_future(migrate(empty_database, wait=short_wait(HANG_GUARD_S)))
    while not any(record.message == "retrying" for record in caplog.records):
        assert not running.done(), running
        await asyncio.sleep(0.01)
    await blocker.execute("ROLLBACK")
    assert await asyncio.wait_for(running, HANG_GUARD_S) == []
