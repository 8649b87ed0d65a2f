"""The stream's figures as ingest reads them, on the real Redis: length, pending entries and
the ages of the oldest pending and oldest undelivered entries (from their IDs' milliseconds)."""

from __future__ import annotations

import redis.asyncio as aioredis

from ingest.pipelinemetrics.stream import StreamReading, read_stream
from votecontract.names import StreamNames

NOW_MS = 10_000_000


async def test_no_stream_or_no_group_reads_as_none(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    assert await read_stream(redis_client, stream_names, NOW_MS) is None
    await redis_client.xadd(stream_names.stream, {"a": "1"})
    assert await read_stream(redis_client, stream_names, NOW_MS) is None


async def test_an_empty_group_has_nothing_pending_or_waiting(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    await redis_client.xgroup_create(stream_names.stream, stream_names.group, id="0", mkstream=True)
    assert await read_stream(redis_client, stream_names, NOW_MS) == StreamReading(0, 0, 0.0, 0.0)


async def test_pending_and_undelivered_entries_and_their_ages(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    stream, group = stream_names.stream, stream_names.group
    await redis_client.xgroup_create(stream, group, id="0", mkstream=True)
    for entry_id in ("1000-0", "2000-0", "3000-0", "4000-0"):
        await redis_client.xadd(stream, {"option": "cats"}, id=entry_id)
    await redis_client.xreadgroup(group, "job-a", {stream: ">"}, count=1)
    await redis_client.xreadgroup(group, "job-b", {stream: ">"}, count=1)

    reading = await read_stream(redis_client, stream_names, NOW_MS)
    # 1000-0 and 2000-0 are pending, 3000-0 is the oldest entry no Job has read.
    assert reading == StreamReading(4, 2, (NOW_MS - 1000) / 1000, (NOW_MS - 3000) / 1000)

    await redis_client.xack(stream, group, "1000-0")
    await redis_client.xreadgroup(group, "job-a", {stream: ">"}, count=10)
    reading = await read_stream(redis_client, stream_names, NOW_MS)
    assert reading == StreamReading(4, 3, (NOW_MS - 2000) / 1000, 0.0)


async def test_an_entry_from_the_future_has_age_zero(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    # A clock stepped back: ages never go negative.
    stream, group = stream_names.stream, stream_names.group
    await redis_client.xgroup_create(stream, group, id="0", mkstream=True)
    await redis_client.xadd(stream, {"option": "cats"}, id=f"{NOW_MS + 5000}-0")
    reading = await read_stream(redis_client, stream_names, NOW_MS)
    assert reading == StreamReading(1, 0, 0.0, 0.0)
