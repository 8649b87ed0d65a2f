"""The redis-streams lag metric against the real Redis, including KEDA's fallbacks."""

from __future__ import annotations

import redis.asyncio as aioredis

from processor.scaledjob.lagmetric import LAG_UNKNOWN, read_lag, trigger_metric
from processor.scaledjob.manifest import LagTrigger
from votecontract.names import StreamNames


async def add(client: aioredis.Redis, stream: str, count: int) -> list[str]:
    return [
        await client.xadd(stream, {"option": "cats", "voter_id": f"v{i}"}) for i in range(count)
    ]


async def test_lag_counts_entries_not_yet_delivered(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    stream, group = stream_names.stream, stream_names.group
    await redis_client.xgroup_create(stream, group, id="0", mkstream=True)
    await add(redis_client, stream, 7)
    await redis_client.xreadgroup(group, "c1", {stream: ">"}, count=3)

    reading = await read_lag(redis_client, stream, group)

    assert (reading.metric, reading.source) == (4, "lag")


async def test_missing_stream_reports_zero(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    reading = await read_lag(redis_client, stream_names.stream, stream_names.group)
    assert (reading.metric, reading.source) == (0, "no-stream")


async def test_missing_group_falls_back_to_stream_length(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    await add(redis_client, stream_names.stream, 5)
    await redis_client.xgroup_create(stream_names.stream, "someone-else", id="$")

    reading = await read_lag(redis_client, stream_names.stream, stream_names.group)

    assert (reading.metric, reading.source) == (5, "xlen")


async def test_xdel_beyond_the_group_makes_lag_null_and_the_trigger_silent(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    stream, group = stream_names.stream, stream_names.group
    await redis_client.xgroup_create(stream, group, id="0", mkstream=True)
    ids = await add(redis_client, stream, 4)
    await redis_client.xreadgroup(group, "c1", {stream: ">"}, count=1)
    await redis_client.xdel(stream, ids[2])

    reading = await read_lag(redis_client, stream, group)
    metric = trigger_metric(LagTrigger(stream, group, lag_count=1), reading)

    assert (reading.metric, reading.lag_unknown) == (LAG_UNKNOWN, True)
    assert not metric.active


async def test_activation_threshold_is_strictly_greater(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    stream, group = stream_names.stream, stream_names.group
    await redis_client.xgroup_create(stream, group, id="0", mkstream=True)
    await add(redis_client, stream, 3)
    reading = await read_lag(redis_client, stream, group)

    at_threshold = LagTrigger(stream, group, lag_count=10, activation_lag_count=3)
    below_threshold = LagTrigger(stream, group, lag_count=10, activation_lag_count=2)

    assert not trigger_metric(at_threshold, reading).active
    assert trigger_metric(below_threshold, reading).active
