"""PostgreSQL cut mid-run, Redis restarted without its data: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from processor import redisclient
from processor.entries import Poison
from processor.job import Job
from processor.settings import ProcessorSettings
from processor.stream import RawEntry
from processor.summary import Outcome
from tests.support.clock import ManualClock
from tests.support.jobgate import SettleGate, watch_log
from tests.support.proxy import Command, CommandCutProxy, TcpProxy
from tests.support.servers import ThrowawayRedis
from tests.support.votestate import (
    add_votes,
    fold,
    group_lag,
    random_votes,
    recorded,
    stream_id,
)
from votecontract.names import FIELD_DEAD_ORIGINAL_ID


@pytest.fixture
async def proxy(database_url: str) -> TcpProxy:
    proxy = TcpProxy(urlsplit(database_url).port or 5432)
    await proxy.start()
    yield proxy  # type: ignore[misc]
    await proxy.cut()


def through(proxy: TcpProxy, settings: ProcessorSettings, **changes: object) -> ProcessorSettings:
    url = settings.database_url.replace(f":{proxy.target_port}/", f":{proxy.port}/")
    return dataclasses.replace(settings, database_url=url, **changes)  # type: ignore[arg-type]


async def test_postgres_cut_mid_run_is_retried_and_nothing_doubles(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    proxy: TcpProxy,
) -> None:
    votes = await add_votes(
        redis_client, settings.names.stream, random_votes(300, 20, random.Random(1))
    )
    job = Job(through(proxy, settings, batch_size=10))
    gate = SettleGate(job, after=5)  # 5 of 30 batches done: the Job cannot finish meanwhile
    running = asyncio.create_task(job.run())
    await gate.wait_reached()
    await proxy.cut()
    with watch_log("processor.retry", "retrying", what="postgres") as retried:
        gate.open()
        await retried.wait()  # a write failed on the cut
    await proxy.start()
    summary = await running
    assert summary.outcome is Outcome.DRAINED
    assert await recorded(db) == fold(votes)
    assert await redis_client.xlen(settings.names.stream) == 0


async def test_postgres_gone_for_good_gives_up_and_acks_nothing_uncommitted(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    proxy: TcpProxy,
) -> None:
    stream = settings.names.stream
    votes = await add_votes(redis_client, stream, random_votes(300, 20, random.Random(2)))
    clock = ManualClock()
    job = Job(through(proxy, settings, batch_size=10), clock=clock)
    gate = SettleGate(job, after=5)
    running = asyncio.create_task(job.run())
    await gate.wait_reached()
    await proxy.cut()
    with watch_log("processor.retry", "retrying", what="postgres") as retried:
        gate.open()
        await retried.wait()
    clock.advance(settings.max_runtime_s)  # the budget runs out while PostgreSQL is away
    summary = await running
    assert summary.outcome is Outcome.GAVE_UP
    state = await recorded(db)
    kept = {stream_id(entry_id) for entry_id, _ in await redis_client.xrange(stream)}
    assert {entry_id for entry_id, _, _ in votes} <= set(state.events) | kept
    assert (await redis_client.xpending(stream, settings.names.group))["pending"] > 0


async def test_postgres_that_stops_answering_costs_the_job_its_budget_not_a_vote(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    proxy: TcpProxy,
) -> None:
    stream = settings.names.stream
    votes = await add_votes(redis_client, stream, random_votes(300, 20, random.Random(5)))
    stalling = Job(through(proxy, settings, batch_size=10, max_runtime_s=2, shutdown_grace_s=1))
    gate = SettleGate(stalling, after=5)  # held after its 5th batch, whatever the machine's pace
    job = asyncio.create_task(stalling.run())
    await gate.wait_reached()
    proxy.stalled = True  # connections stay open; nothing gets through either way
    gate.open()
    summary = await asyncio.wait_for(job, timeout=60)  # far beyond 2 s + 1 s: never reached
    assert summary.outcome is Outcome.GAVE_UP
    assert await db.fetchval("SELECT count(*) FROM dead_letters") == 0
    assert (await redis_client.xpending(stream, settings.names.group))["pending"] > 0
    proxy.stalled = False
    assert (await Job(dataclasses.replace(settings, claim_min_idle_ms=0)).run()).outcome is (
        Outcome.DRAINED
    )
    assert await recorded(db) == fold(votes)


async def test_redis_restarted_without_data_recreates_the_group_and_nothing_doubles(
    settings: ProcessorSettings,
    db: asyncpg.Connection,
    throwaway_redis: ThrowawayRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    settings = dataclasses.replace(settings, redis_url=throwaway_redis.url, batch_size=10)
    stream = settings.names.stream
    redis = aioredis.Redis.from_url(throwaway_redis.url)
    try:
        before = await add_votes(redis, stream, random_votes(300, 20, random.Random(3)))
        job = Job(settings)
        gate = SettleGate(job, after=3)
        running = asyncio.create_task(job.run())
        await gate.wait_reached()
        throwaway_redis.stop()
        throwaway_redis.start()
        await redis.aclose()
        redis = aioredis.Redis.from_url(throwaway_redis.url)
        # Redis comes back with a replay of the old entries (from a replica, say) and new ones.
        async with redis.pipeline(transaction=False) as pipe:
            for (ms, seq), option, voter in before:
                pipe.xadd(
                    stream,
                    {"option": option, "voter_id": voter, "accepted_ms": "1"},
                    id=f"{ms}-{seq}",
                )
            await pipe.execute()
        after = await add_votes(redis, stream, random_votes(50, 20, random.Random(4)))
        gate.open()
        assert (await running).outcome is Outcome.DRAINED
        assert (await Job(settings).run()).outcome is Outcome.DRAINED
        assert await recorded(db) == fold(before + after)
        assert await redis.xlen(stream) == 0
    finally:
        await redis.aclose()
    assert any("consumer group missing" in record.getMessage() for record in caplog.records)


def _is_command(name: str, key: str) -> Callable[[Command], bool]:
    return lambda parts: parts[0].upper() == name.encode() and parts[1:2] == [key.encode()]


@pytest.mark.parametrize("after_cut", ["the Job reconnects", "the Job gives up, the next one"])
async def test_a_cut_between_dead_letter_and_ack_loses_and_doubles_no_dead_letter(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    redis_url: str,
    after_cut: str,
) -> None:
    """Whatever the Redis side does (one MULTI/EXEC, or an ack and a best-effort mirror), a
    connection cut between the dead-letter XADD and the XACK leaves every poison entry once
    in PostgreSQL's dead_letters and acked, every valid vote recorded once, and no poison
    entry twice in the Redis mirror."""
    stream, dead_key = settings.names.stream, settings.names.dead_letter
    rng = random.Random(8)
    votes, poison = [], []
    for number in range(4):
        votes += await add_votes(redis_client, stream, random_votes(5, 6, rng))
        fields = ["option", "fish", "voter_id", f"p{number}", "accepted_ms", "1"]
        poison.append(stream_id(await redis_client.execute_command("XADD", stream, "*", *fields)))
    clock = ManualClock()

    def out_of_time() -> None:
        if after_cut != "the Job reconnects":
            clock.advance(settings.max_runtime_s)  # its retry of the ack gives up

    proxy = CommandCutProxy(
        urlsplit(redis_url).port or 6379,
        _is_command("XADD", dead_key),
        _is_command("XACK", stream),
        on_cut=out_of_time,
    )
    await proxy.start()
    try:
        url = redis_url.replace(f":{proxy.target_port}/", f":{proxy.port}/")
        first = await Job(
            dataclasses.replace(settings, redis_url=url, batch_size=6), clock=clock
        ).run()
    finally:
        await proxy.cut()
    assert proxy.cuts == 1
    if after_cut == "the Job reconnects":
        assert first.outcome is Outcome.DRAINED
    else:
        assert first.outcome is Outcome.GAVE_UP
        assert (await Job(settings).run()).outcome is Outcome.DRAINED
    assert await recorded(db) == fold(votes)
    rows = await db.fetch("SELECT entry_ms, entry_seq, reason FROM dead_letters")
    assert sorted((row["entry_ms"], row["entry_seq"]) for row in rows) == poison
    assert all(row["reason"].startswith("unknown option 'fish'") for row in rows)
    mirrored = Counter(
        stream_id(fields[FIELD_DEAD_ORIGINAL_ID])
        for _, fields in await redis_client.xrange(dead_key)
    )
    assert set(mirrored) <= set(poison)
    assert max(mirrored.values(), default=1) == 1, mirrored
    assert (await redis_client.xpending(stream, settings.names.group))["pending"] == 0
    assert await redis_client.xlen(stream) == 0


@pytest.mark.timeout(30)  # the failure this guards against is a hang
async def test_a_consumer_group_deleted_mid_run_is_recreated_and_nothing_doubles(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    stream, group = settings.names.stream, settings.names.group
    votes = await add_votes(redis_client, stream, random_votes(20, 6, random.Random(9)))
    job = Job(dataclasses.replace(settings, batch_size=5, writers=1))
    settle = job.stream.settle

    async def settle_then_delete_the_group(ids: Sequence[bytes], dead: Sequence[Poison]) -> int:
        refused = await settle(ids, dead)
        if job.summary.batches == 0:  # after the first batch: someone runs XGROUP DESTROY
            await redis_client.xgroup_destroy(stream, group)
        return refused

    job.stream.settle = settle_then_delete_the_group  # type: ignore[method-assign]
    summary = await job.run()
    assert summary.outcome is Outcome.DRAINED
    assert summary.duplicates >= 5  # the recreated group delivered the first batch again
    assert await recorded(db) == fold(votes)
    assert await group_lag(redis_client, stream, group) == 0
    assert await redis_client.xlen(stream) == 0
    assert any("consumer group missing" in record.getMessage() for record in caplog.records)


@pytest.mark.timeout(30)  # without the fix this hangs
async def test_a_stage_whose_cancel_is_lost_still_lets_a_failed_job_end(
    settings: ProcessorSettings, redis_client: aioredis.Redis, db: asyncpg.Connection
) -> None:
    """The reader fails while the settling stage is inside a call that loses its cancel, as
    asyncio.wait_for does on Python 3.11 (gh-86296) inside redis-py and asyncpg."""
    await add_votes(redis_client, settings.names.stream, random_votes(20, 6, random.Random(10)))
    job = Job(dataclasses.replace(settings, batch_size=5))
    settling = asyncio.Event()
    settle, read_new = job.stream.settle, job.stream.read_new

    async def settle_losing_a_cancel(ids: Sequence[bytes], dead: Sequence[Poison]) -> int:
        refused = await settle(ids, dead)
        if not settling.is_set():
            settling.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)
        return refused

    reads: list[int] = []

    async def read_new_failing_second(count: int) -> list[RawEntry]:
        reads.append(count)
        if len(reads) == 1:
            return await read_new(count)
        await settling.wait()  # the first batch is being settled
        raise ResponseError("ERR injected failure")

    job.stream.settle = settle_losing_a_cancel  # type: ignore[method-assign]
    job.stream.read_new = read_new_failing_second  # type: ignore[method-assign]
    with pytest.raises(ExceptionGroup) as raised:
        await job.run()
    assert [repr(error) for error in raised.value.exceptions] == [
        repr(ResponseError("ERR injected failure"))
    ]


@pytest.fixture
async def redis_proxy(settings: ProcessorSettings) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(urlsplit(settings.redis_url).port or 6379)
    await proxy.start()
    yield proxy
    await proxy.cut()


def through_redis(
    proxy: TcpProxy, settings: ProcessorSettings, **changes: object
) -> ProcessorSettings:
    url = settings.redis_url.replace(f":{proxy.target_port}", f":{proxy.port}", 1)
    return dataclasses.replace(settings, redis_url=url, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("what", ["read", "trim"])
async def test_replies_redis_applied_but_never_sent_cost_neither_votes_nor_the_run(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    redis_proxy: TcpProxy,
    monkeypatch: pytest.MonkeyPatch,
    what: str,
) -> None:
    # A stalled or half-open connection: Redis applies the command (XREADGROUP delivers, XACK
    # trims) and the reply never arrives. The client gives up after its socket timeout (without
    # one the Job would wait to the end of MAX_RUNTIME_S, 600 s here) and retries on a new
    # connection; entries a lost XREADGROUP reply delivered are pending on this consumer,
    # unseen, and must be read again before the Job calls the stream drained.
    monkeypatch.setattr(redisclient, "SOCKET_TIMEOUT_S", 0.5)
    votes = await add_votes(
        redis_client, settings.names.stream, random_votes(300, 20, random.Random(7))
    )
    job = Job(through_redis(redis_proxy, settings, batch_size=10, max_runtime_s=600))
    gate = SettleGate(job, after=5)
    running = asyncio.create_task(job.run())
    try:
        await gate.wait_reached()
        redis_proxy.swallow_replies = True  # requests reach Redis and apply; replies are lost
        with watch_log("processor.retry", "retrying", what=what) as retried:
            gate.open()
            await asyncio.wait_for(retried.wait(), timeout=60)  # never reached without a bound
        redis_proxy.swallow_replies = False
        summary = await asyncio.wait_for(running, timeout=60)
    finally:
        running.cancel()
    assert summary.outcome is Outcome.DRAINED
    assert await recorded(db) == fold(votes)
    assert (await redis_client.xpending(settings.names.stream, settings.names.group))[
        "pending"
    ] == 0
