"""The coalescing writer against real Redis servers, including ones that stop or stall."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ingest.writer import StreamWriter, WriteError
from tests.support.polling import eventually
from tests.support.servers import ThrowawayRedis, free_port
from votecontract.names import StreamNames


@pytest.fixture
async def writer(redis_url: str, stream_names: StreamNames) -> AsyncIterator[StreamWriter]:
    stream_writer = StreamWriter.from_url(redis_url, stream_names.stream, timeout=30.0)
    await stream_writer.start()
    yield stream_writer
    await stream_writer.aclose()


def fields(i: int) -> tuple[str, ...]:
    return ("option", "cats" if i % 2 else "dogs", "voter_id", f"v{i}")


async def test_concurrent_writes_share_batches_and_each_gets_its_own_entry(
    redis_url: str, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    batches: list[int] = []
    writer = StreamWriter.from_url(redis_url, stream_names.stream, 30.0, on_batch=batches.append)
    await writer.start()
    try:
        ids = await asyncio.gather(*(writer.xadd(fields(i)) for i in range(300)))
    finally:
        await writer.aclose()
    entries = dict(await redis_client.xrange(stream_names.stream))
    assert len(set(ids)) == 300
    assert [entries[entry_id]["voter_id"] for entry_id in ids] == [f"v{i}" for i in range(300)]
    assert sum(batches) == 300
    assert len(batches) < 300


async def test_a_refused_command_fails_only_its_own_request(
    writer: StreamWriter, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    good = writer.xadd(fields(1))
    odd = writer.xadd(("only-a-field-name",))
    also_good = writer.xadd(fields(2))
    with pytest.raises(WriteError, match="refused"):
        await odd
    assert await redis_client.xlen(stream_names.stream) == 2
    assert (await good) < (await also_good)


@pytest.mark.timeout(30)  # a writer that waited for its 60 s timeout fails here
async def test_no_server_fails_the_batch_at_once_not_after_the_timeout() -> None:
    writer = StreamWriter.from_url(f"redis://127.0.0.1:{free_port()}/0", "s", timeout=60.0)
    await writer.start()
    try:
        results = await asyncio.gather(
            *(writer.xadd(fields(i)) for i in range(3)), return_exceptions=True
        )
    finally:
        await writer.aclose()
    for result in results:
        assert isinstance(result, WriteError)
        assert "ConnectionError" in str(result), result  # refused, not "did not confirm"


async def test_a_stopped_server_fails_the_batch_then_the_writer_reconnects(
    throwaway_redis: ThrowawayRedis,
) -> None:
    writer = StreamWriter.from_url(throwaway_redis.url, "votes", timeout=30.0)
    await writer.start()
    client = aioredis.Redis.from_url(throwaway_redis.url, decode_responses=True)
    try:
        first = await writer.xadd(fields(1))
        throwaway_redis.stop()
        with pytest.raises(WriteError):
            await writer.xadd(fields(2))
        throwaway_redis.start()
        second = await writer.xadd(fields(3))
        assert [entry_id for entry_id, _ in await client.xrange("votes")] == [second]
        assert first
    finally:
        await writer.aclose()
        await client.aclose()


@pytest.mark.timeout(60)  # paused for 10 minutes: only the writer's timeout ends the wait
async def test_a_stalled_server_fails_requests_within_the_timeout(
    throwaway_redis: ThrowawayRedis,
) -> None:
    writer = StreamWriter.from_url(throwaway_redis.url, "votes", timeout=0.3)
    await writer.start()
    admin = aioredis.Redis.from_url(throwaway_redis.url)
    try:
        await writer.xadd(fields(0))
        # Paused far longer than the timeout: only the writer's own timeout can end the wait.
        await admin.execute_command("CLIENT", "PAUSE", "600000", "WRITE")
        with pytest.raises(WriteError, match="did not confirm"):
            await writer.xadd(fields(1))
        await admin.execute_command("CLIENT", "UNPAUSE")
        assert await writer.xadd(fields(2))
    finally:
        await writer.aclose()
        await admin.aclose()


async def test_close_finishes_the_writes_in_flight(
    throwaway_redis: ThrowawayRedis,
) -> None:
    writer = StreamWriter.from_url(throwaway_redis.url, "votes", timeout=60.0)
    await writer.start()
    admin = aioredis.Redis.from_url(throwaway_redis.url)
    try:
        await writer.xadd(fields(0))
        await admin.execute_command("CLIENT", "PAUSE", "600000", "WRITE")
        pending = [writer.xadd(fields(i)) for i in range(1, 20)]
        closing = asyncio.create_task(writer.aclose())
        await wait_for_paused_writes(admin)  # the writes are at Redis, held by the pause
        assert not any(future.done() for future in pending)
        await admin.execute_command("CLIENT", "UNPAUSE")
        await closing
        assert all(future.done() and not future.exception() for future in pending)
        assert await admin.xlen("votes") == 20
        with pytest.raises(WriteError):
            writer.xadd(fields(99))
    finally:
        await admin.aclose()


async def wait_for_paused_writes(admin: aioredis.Redis) -> None:
    """Until Redis holds a client's write back because of CLIENT PAUSE (it counts as blocked)."""

    async def held() -> bool:
        return bool((await admin.info("clients"))["blocked_clients"])

    await eventually(held, "a write held by CLIENT PAUSE")


async def test_close_disconnects(throwaway_redis: ThrowawayRedis) -> None:
    writer = StreamWriter.from_url(throwaway_redis.url, "votes", timeout=30.0)
    await writer.start()
    admin = aioredis.Redis.from_url(throwaway_redis.url)
    try:
        await writer.xadd(fields(0))
        assert len(await admin.client_list()) == 2
        await writer.aclose()

        async def only_admin_left() -> bool:
            return len(await admin.client_list()) == 1

        await eventually(only_admin_left, "Redis sees the writer's connection closed")
    finally:
        await admin.aclose()


@pytest.mark.timeout(60)  # the pause lasts 10 minutes: only the writer's timeouts end this
async def test_a_server_that_accepts_but_never_answers_bounds_start_and_writes(
    throwaway_redis: ThrowawayRedis,
) -> None:
    admin = aioredis.Redis.from_url(throwaway_redis.url)
    await admin.execute_command("CLIENT", "PAUSE", "600000", "ALL")  # ends with the server
    writer = StreamWriter.from_url(throwaway_redis.url, "votes", timeout=0.3)
    try:
        await writer.start()
        with pytest.raises(WriteError):
            await writer.xadd(fields(1))
    finally:
        await writer.aclose()
        await admin.aclose()
