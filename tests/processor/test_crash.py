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
# Each kind of kill at least this often; a Job killed at a random instant may have finished
# already on a fast machine, so such trials are repeated (up to MAX_TRIALS in all).
EACH_KIND = TRIALS // 4
MAX_TRIALS = 3 * TRIALS


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
    frozen_after_commit = killed_while_running = trial = 0
    while trial < TRIALS or min(frozen_after_commit, killed_while_running) < EACH_KIND:
        assert trial < MAX_TRIALS, (frozen_after_commit, killed_while_running)
        votes += await add_votes(redis_client, stream, random_votes(150, 12, rng))
        # A retried pod keeps its Job's consumer name; a new Job has another one.
        consumer = rng.choice(["job-a", "job-b", "job-c"])
        ready_file = tmp_path / f"ready-{trial}"
        extra = {ENV_READY_FILE: str(ready_file)}
        freeze = trial % 2 == 0
        if freeze:
            extra[ENV_TEST_STOP_AFTER_COMMIT] = str(rng.randint(1, 4))
        proc = start_job(job_env(dataclasses.replace(base, consumer=consumer), **extra), log)
        if freeze:
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
        trial += 1
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
    # Frozen after its 4th commit (of 600), the Job gets SIGTERM while it has work in hand.
    frozen = job_env(
        dataclasses.replace(settings, batch_size=5), **{ENV_TEST_STOP_AFTER_COMMIT: "4"}
    )
    proc = start_job(frozen, log)
    assert await asyncio.to_thread(wait_until_stopped_or_done, proc)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    assert await asyncio.to_thread(proc.wait, 60) == 0
    summary = summary_lines(log)[-1]
    assert summary["outcome"] == "stopped"
    assert 4 * 5 <= summary["recorded"] < len(votes)
    assert (await redis_client.xpending(stream, group))["pending"] == 0  # all read was acked
    assert len((await recorded(db)).events) == summary["recorded"]
    rerun = start_job(job_env(settings), log)
    assert await asyncio.to_thread(rerun.wait, 60) == 0
    assert await recorded(db) == fold(votes)
