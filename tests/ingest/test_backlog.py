"""Group bootstrap and the backlog figure, against the real Redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from ingest.backlog import BacklogMonitor, ensure_group, read_backlog
from tests.support.servers import free_port
from votecontract.names import StreamNames


def monitor(redis: aioredis.Redis, names: StreamNames, max_backlog: int = 3) -> BacklogMonitor:
    return BacklogMonitor(redis, [names], max_backlog, interval=0.05, timeout=30.0)


async def test_ensure_group_creates_stream_and_group_at_zero_and_tolerates_busygroup(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    await ensure_group(redis_client, stream_names)
    await ensure_group(redis_client, stream_names)
    [group] = await redis_client.xinfo_groups(stream_names.stream)
    assert group["name"] == stream_names.group
    assert group["last-delivered-id"] == "0-0"


async def test_backlog_is_the_group_lag(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    await ensure_group(redis_client, stream_names)
    for i in range(5):
        await redis_client.xadd(stream_names.stream, {"option": "cats", "voter_id": f"v{i}"})
    assert await read_backlog(redis_client, stream_names) == 5
    await redis_client.xreadgroup(stream_names.group, "c1", {stream_names.stream: ">"}, count=2)
    assert await read_backlog(redis_client, stream_names) == 3


async def test_backlog_falls_back_to_xlen_when_lag_is_unknown(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    await ensure_group(redis_client, stream_names)
    ids = [await redis_client.xadd(stream_names.stream, {"n": str(i)}) for i in range(3)]
    await redis_client.xdel(stream_names.stream, ids[1])
    [group] = await redis_client.xinfo_groups(stream_names.stream)
    assert group["lag"] is None
    assert await read_backlog(redis_client, stream_names) == 2


async def test_missing_stream_or_group_reads_as_none(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    assert await read_backlog(redis_client, stream_names) is None
    await redis_client.xadd(stream_names.stream, {"n": "1"})
    assert await read_backlog(redis_client, stream_names) is None


async def test_refresh_recreates_a_missing_group_without_skipping_entries(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    for i in range(4):
        await redis_client.xadd(stream_names.stream, {"n": str(i)})
    backlog = monitor(redis_client, stream_names)
    assert await backlog.refresh()
    assert (backlog.backlog, backlog.over_limit, backlog.ready) == (4, True, True)
    [group] = await redis_client.xinfo_groups(stream_names.stream)
    assert group["last-delivered-id"] == "0-0"


async def test_over_limit_follows_the_backlog(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    backlog = monitor(redis_client, stream_names, max_backlog=2)
    assert await backlog.refresh()
    assert not backlog.over_limit
    for i in range(3):
        await redis_client.xadd(stream_names.stream, {"n": str(i)})
    await backlog.refresh()
    assert backlog.over_limit
    await redis_client.xreadgroup(stream_names.group, "c1", {stream_names.stream: ">"}, count=1)
    await backlog.refresh()
    assert (backlog.backlog, backlog.over_limit) == (2, False)


async def test_unreachable_redis_is_not_ready_and_keeps_the_last_figure() -> None:
    client = aioredis.Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5
    )
    try:
        backlog = monitor(client, StreamNames("s", "g"))
        assert not await backlog.refresh()
        assert (backlog.ready, backlog.backlog, backlog.over_limit) == (False, None, False)
    finally:
        await client.aclose()
