"""The shared fixtures reach the real servers and keep to their own key space."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

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
