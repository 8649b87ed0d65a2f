"""StreamTrimmer: removes only entries every group has delivered and acked."""

from __future__ import annotations

import redis.asyncio as aioredis

from processor.trim import StreamTrimmer
from tests.support.votestate import add_votes
from votecontract.names import StreamNames


async def ids_in(redis: aioredis.Redis, stream: str) -> list[str]:
    return [entry_id for entry_id, _ in await redis.xrange(stream)]


async def test_trim_stops_at_the_slowest_group_and_oldest_pending_entry(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    stream = stream_names.stream
    added = [
        f"{ms}-{seq}"
        for (ms, seq), _, _ in await add_votes(redis_client, stream, [("cats", "a")] * 10)
    ]
    trimmer = StreamTrimmer(redis_client, stream)
    assert await trimmer.trim() == 0  # no group: nothing is known to be processed
    await redis_client.xgroup_create(stream, "fast", "0")
    await redis_client.xgroup_create(stream, "slow", "0")
    await redis_client.xreadgroup("fast", "c", {stream: ">"})
    await redis_client.xack(stream, "fast", *added)
    await redis_client.xreadgroup("slow", "c", {stream: ">"}, count=6)
    await redis_client.xack(stream, "slow", *added[:2], *added[3:6])
    assert await trimmer.trim() == 2  # slow still holds added[2]
    assert await ids_in(redis_client, stream) == added[2:]
    await redis_client.xack(stream, "slow", added[2])
    assert await trimmer.trim() == 4  # up to slow's last delivered entry, never beyond
    assert await ids_in(redis_client, stream) == added[6:]
    infos = await redis_client.xinfo_groups(stream)
    assert all(info["lag"] is not None for info in infos)


async def test_trim_of_a_missing_stream_does_nothing(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    assert await StreamTrimmer(redis_client, stream_names.stream).trim() == 0
    assert not await redis_client.exists(stream_names.stream)
