"""The Job killed at random instants (and exactly between COMMIT and XACK), then run again:
every entry is recorded exactly once and the tally is exact."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import signal
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from processor.settings import ProcessorSettings
from tests.support.jobprocess import (
    job_env,
    start_job,
    summary_lines,
    wait_until_ready_or_done,
    wait_until_stopped_or_done,
)
from tests.support.votestate import add_votes, fold, group_lag, random_votes, recorded
from votecontract.names import ENV_READY_FILE, ENV_TEST_STOP_AFTER_COMMIT

TRIALS = 24


@pytest.mark.slow
async def test_killed_jobs_never_lose_or_double_a_vote(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    rng = random.Random(11)
    stream, group = settings.names.stream, settings.names.group
    base = dataclasses.replace(settings, batch_size=5, claim_min_idle_ms=0, max_deliveries=10_000)
    log = tmp_path / "jobs.log"
    votes = []
    frozen_after_commit = killed_while_running = 0
    for trial in range(TRIALS):
        votes += await add_votes(redis_client, stream, random_votes(150, 12, rng))
        # A retried pod keeps its Job's consumer name; a new Job has another one.
        consumer = rng.choice(["job-a", "job-b", "job-c"])
        ready_file = tmp_path / f"ready-{trial}"
        extra = {ENV_READY_FILE: str(ready_file)}
        if trial % 2 == 0:
            extra[ENV_TEST_STOP_AFTER_COMMIT] = str(rng.randint(1, 4))
        proc = start_job(job_env(dataclasses.replace(base, consumer=consumer), **extra), log)
        if trial % 2 == 0:
            frozen_after_commit += await asyncio.to_thread(wait_until_stopped_or_done, proc)
        else:
            # From the first read on (not from the start: start-up time varies with the
            # machine's load), a random instant within the Job's ~30 batches.
            await asyncio.to_thread(wait_until_ready_or_done, proc, ready_file)
            await asyncio.sleep(rng.uniform(0, 0.08))
            killed_while_running += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        assert await group_lag(redis_client, stream, group) is not None
    assert frozen_after_commit >= TRIALS // 4  # the hook really froze Jobs between COMMIT and XACK
    assert killed_while_running >= TRIALS // 4
    final = start_job(job_env(dataclasses.replace(base, consumer="job-final")), log)
    assert await asyncio.to_thread(final.wait) == 0
    assert summary_lines(log)[-1]["outcome"] == "drained"
    assert await recorded(db) == fold(votes)
    assert await redis_client.xlen(stream) == 0
    assert (await redis_client.xpending(stream, group))["pending"] == 0
    assert await group_lag(redis_client, stream, group) == 0


async def test_sigterm_finishes_the_batches_in_hand_and_exits_zero(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    stream, group = settings.names.stream, settings.names.group
    votes = await add_votes(redis_client, stream, random_votes(3000, 50, random.Random(12)))
    log = tmp_path / "job.log"
    proc = start_job(job_env(dataclasses.replace(settings, batch_size=5)), log)
    for _ in range(2000):
        if await db.fetchval("SELECT count(*) FROM vote_events") >= 20:
            break
        await asyncio.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 20) == 0
    summary = summary_lines(log)[-1]
    assert summary["outcome"] == "stopped"
    assert 0 < summary["recorded"] < len(votes)
    assert (await redis_client.xpending(stream, group))["pending"] == 0  # all read was acked
    assert len((await recorded(db)).events) == summary["recorded"]
    rerun = start_job(job_env(settings), log)
    assert await asyncio.to_thread(rerun.wait, 60) == 0
    assert await recorded(db) == fold(votes)
