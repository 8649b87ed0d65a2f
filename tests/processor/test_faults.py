"""PostgreSQL cut mid-run, Redis restarted without its data: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from processor.job import Job
from processor.settings import ProcessorSettings
from processor.summary import Outcome
from tests.support.proxy import TcpProxy
from tests.support.servers import ThrowawayRedis
from tests.support.votestate import add_votes, fold, random_votes, recorded, stream_id


async def wait_for_events(db: asyncpg.Connection, at_least: int) -> None:
    for _ in range(1000):
        if await db.fetchval("SELECT count(*) FROM vote_events") >= at_least:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {at_least} events recorded in time")


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
    job = asyncio.create_task(Job(through(proxy, settings, batch_size=10)).run())
    await wait_for_events(db, 50)
    await proxy.cut()
    await asyncio.sleep(0.3)
    await proxy.start()
    summary = await job
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
    job = asyncio.create_task(Job(through(proxy, settings, batch_size=10, max_runtime_s=1.5)).run())
    await wait_for_events(db, 50)
    await proxy.cut()
    summary = await job
    assert summary.outcome is Outcome.GAVE_UP
    state = await recorded(db)
    kept = {stream_id(entry_id) for entry_id, _ in await redis_client.xrange(stream)}
    assert {entry_id for entry_id, _, _ in votes} <= set(state.events) | kept
    assert (await redis_client.xpending(stream, settings.names.group))["pending"] > 0
    rerun = await Job(settings).run()
    assert rerun.outcome is Outcome.DRAINED
    assert await recorded(db) == fold(votes)


async def test_postgres_that_stops_answering_costs_the_job_its_budget_not_a_vote(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    proxy: TcpProxy,
) -> None:
    stream = settings.names.stream
    votes = await add_votes(redis_client, stream, random_votes(300, 20, random.Random(5)))
    stalling = through(proxy, settings, batch_size=10, max_runtime_s=2, shutdown_grace_s=1)
    job = asyncio.create_task(Job(stalling).run())
    await wait_for_events(db, 50)
    proxy.stalled = True  # connections stay open; nothing gets through either way
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
        job = asyncio.create_task(Job(settings).run())
        await wait_for_events(db, 30)
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
        assert (await job).outcome is Outcome.DRAINED
        assert (await Job(settings).run()).outcome is Outcome.DRAINED
        assert await recorded(db) == fold(before + after)
        assert await redis.xlen(stream) == 0
    finally:
        await redis.aclose()
    assert any("consumer group missing" in record.getMessage() for record in caplog.records)
