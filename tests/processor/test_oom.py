"""Redis at `maxmemory` with `noeviction`: a Job still drains, acks and trims.

Under OOM Redis refuses every command flagged `denyoom` (XADD, XGROUP CREATE, SET, ...) and
anything queued in MULTI, but still runs XREADGROUP, XACK, XAUTOCLAIM, XTRIM and scripts
that call only those: acking and trimming is how memory is given back.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from processor.job import Job
from processor.settings import ProcessorSettings
from processor.summary import Outcome
from tests.support.oom import is_oom, make_oom
from tests.support.servers import ThrowawayRedis, free_port
from tests.support.votestate import add_votes, fold, random_votes, recorded


@pytest.fixture
async def full_redis(tmp_path: Path) -> AsyncIterator[ThrowawayRedis]:
    server = ThrowawayRedis(port=free_port(), workdir=tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_job_drains_acks_and_trims_while_redis_is_out_of_memory(
    settings: ProcessorSettings,
    db: asyncpg.Connection,
    full_redis: ThrowawayRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    settings = dataclasses.replace(settings, redis_url=full_redis.url, batch_size=10)
    stream, group = settings.names.stream, settings.names.group
    async with aioredis.Redis.from_url(full_redis.url) as redis:
        await redis.xgroup_create(stream, group, "0", mkstream=True)
        # A poison entry first: its dead letter falls in the first batch, written under OOM.
        await redis.xadd(stream, {"option": "birds", "voter_id": "x", "accepted_ms": "1"})
        votes = await add_votes(redis, stream, random_votes(200, 30, random.Random(5)))
        await make_oom(redis)
        assert await is_oom(redis)

        summary = await Job(settings).run()

        assert summary.outcome is Outcome.DRAINED
        assert await recorded(db) == fold(votes)
        assert await db.fetchval("SELECT count(*) FROM dead_letters") == 1
        assert (await redis.xpending(stream, group))["pending"] == 0
        assert await redis.xlen(stream) == 0
        assert await is_oom(redis)  # all along
        # The dead-letter mirror in Redis is best effort: refused under OOM, logged, counted.
        assert summary.mirror_failures == 1
        assert not await redis.exists(settings.names.dead_letter)
    assert any("dead-letter mirror" in r.getMessage() for r in caplog.records)


async def test_a_job_that_finds_no_group_under_oom_gives_up_without_touching_the_stream(
    settings: ProcessorSettings, db: asyncpg.Connection, full_redis: ThrowawayRedis
) -> None:
    """XGROUP CREATE is refused under OOM: the Job retries within its budget, then gives up."""
    settings = dataclasses.replace(
        settings, redis_url=full_redis.url, max_runtime_s=0.5, retry_backoff_max_ms=50
    )
    stream = settings.names.stream
    async with aioredis.Redis.from_url(full_redis.url) as redis:
        await add_votes(redis, stream, random_votes(20, 5, random.Random(6)))
        await make_oom(redis)

        summary = await Job(settings).run()

        assert summary.outcome is Outcome.GAVE_UP
        assert await redis.xlen(stream) == 20
        assert await db.fetchval("SELECT count(*) FROM vote_events") == 0
