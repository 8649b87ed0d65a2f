"""Migrations: in order, once each, safe to run twice and concurrently."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from processor.migrate import MigrationError, load_migrations, migrate
from tests.support.databases import TEST_PG_ADMIN_URL, admin_execute, dsn_with_database


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
