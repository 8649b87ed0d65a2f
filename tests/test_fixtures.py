"""The shared fixtures reach the real servers and keep to their own key space."""

from __future__ import annotations

import os
import subprocess
import uuid

import asyncpg
import redis.asyncio as aioredis

from tests.support.databases import (
    TEST_PG_ADMIN_URL,
    admin_execute,
    drop_orphaned_databases,
    process_alive,
)
from tests.support.servers import ThrowawayRedis
from votecontract.names import StreamNames


async def test_pg_database_is_private_and_empty(pg_database_url: str) -> None:
    conn = await asyncpg.connect(pg_database_url)
    try:
        name = await conn.fetchval("SELECT current_database()")
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        await conn.close()
    assert name.startswith("vote_test_")
    assert tables == 0


async def test_stream_names_use_the_test_prefix(
    stream_names: StreamNames, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    assert stream_names.stream.startswith(key_prefix)
    assert stream_names.dead_letter == stream_names.stream + ":dead"
    await redis_client.xadd(stream_names.stream, {"option": "cats"})
    assert await redis_client.xlen(stream_names.stream) == 1


async def test_throwaway_redis_can_stop_and_start(throwaway_redis: ThrowawayRedis) -> None:
    for restart in (False, True):
        if restart:
            throwaway_redis.stop()
            throwaway_redis.start()
        client = aioredis.Redis.from_url(throwaway_redis.url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()


async def test_orphaned_databases_are_dropped_and_live_ones_kept() -> None:
    dead, live = 4_000_001, os.getpid()
    names = {
        f"vote_test_orphan-check_{dead}_{uuid.uuid4().hex[:8]}": False,
        f"vote_cluster_orphancheck_{dead}": False,
        f"vote_test_orphan-check_{live}_{uuid.uuid4().hex[:8]}": True,
        f"vote_testing_{dead}_{uuid.uuid4().hex[:8]}": True,  # not a test database's name
    }
    cluster_db = f"vote_cluster_orphancheck_{dead}"
    await admin_execute(f'DROP ROLE IF EXISTS "{cluster_db}_migrator"')
    await admin_execute(f'CREATE ROLE "{cluster_db}_migrator" LOGIN')
    for name in names:
        await admin_execute(f'CREATE DATABASE "{name}"')
    try:
        dropped = await drop_orphaned_databases(alive=lambda pid: pid != dead)
        left = await database_names()
        assert {name: name in left for name in names} == names
        assert set(dropped) >= {name for name, kept in names.items() if not kept}
        assert not await role_exists(f"{cluster_db}_migrator")
    finally:
        for name in names:
            await admin_execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin_execute(f'DROP ROLE IF EXISTS "{cluster_db}_migrator"')


def test_a_process_is_alive_until_it_is_reaped() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)
    assert process_alive(os.getpid())


async def database_names() -> set[str]:
    conn = await asyncpg.connect(TEST_PG_ADMIN_URL)
    try:
        return {row[0] for row in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


async def role_exists(name: str) -> bool:
    conn = await asyncpg.connect(TEST_PG_ADMIN_URL)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", name))
    finally:
        await conn.close()
