"""A PostgreSQL session left idle in a transaction holding the tally and ballot row locks (what
a crashed client or a half-open connection leaves behind) costs Jobs their runtime, never a
vote: each Job exits within MAX_RUNTIME_S plus its grace without recording or dead-lettering,
however often the votes were delivered, and once the locks go the next Job records them all."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from processor.job import Job
from processor.settings import ProcessorSettings
from processor.summary import Outcome
from tests.support.jobprocess import job_env, start_job, summary_lines, wait_until_ready_or_done
from tests.support.votestate import add_votes, fold, recorded
from votecontract.names import ENV_MAX_RUNTIME_S, ENV_READY_FILE, ENV_SHUTDOWN_GRACE_S

# Far beyond MAX_RUNTIME_S plus grace (3 s): reached only if a Job waits without a bound.
EXIT_WITHIN_S = 60


async def exit_code(proc: subprocess.Popen[bytes]) -> int:
    try:
        return await asyncio.to_thread(proc.wait, EXIT_WITHIN_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            await asyncio.to_thread(proc.wait)


async def waiting_on_a_lock(db: asyncpg.Connection) -> None:
    """Until a session of this database waits on a lock (the Job's batch, on the held rows)."""
    for _ in range(2000):
        waiting = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no session waited on the held locks")


async def test_a_session_holding_the_row_locks_costs_time_not_votes(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    stream = settings.names.stream
    settings = dataclasses.replace(settings, claim_min_idle_ms=0, max_deliveries=1)
    first = await add_votes(redis_client, stream, [("cats", "ann"), ("dogs", "bob")])
    assert (await Job(settings).run()).outcome is Outcome.DRAINED  # the rows to lock exist
    later = await add_votes(
        redis_client, stream, [("dogs", "ann"), ("cats", "bob"), ("cats", "cy")]
    )
    holder = await asyncpg.connect(settings.database_url)
    log = tmp_path / "jobs.log"
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT * FROM tally FOR UPDATE")
        await holder.execute("SELECT * FROM ballots FOR UPDATE")
        env = job_env(settings, **{ENV_MAX_RUNTIME_S: "2", ENV_SHUTDOWN_GRACE_S: "1"})
        # The second Job re-reads what the first read: delivered twice, over MAX_DELIVERIES=1.
        for consumer in ("job-a", "job-a", "job-b"):
            proc = start_job({**env, "CONSUMER_NAME": consumer}, log)
            assert await exit_code(proc) == 1  # gave up: its entries stay pending
        assert [line["outcome"] for line in summary_lines(log)] == ["gave_up"] * 3
        assert await db.fetchval("SELECT count(*) FROM vote_events") == len(first)
        assert await db.fetchval("SELECT count(*) FROM dead_letters") == 0
    finally:
        await holder.close()  # the session ends, its transaction rolls back
    rerun = await Job(settings).run()
    assert rerun.outcome is Outcome.DRAINED
    assert (rerun.recorded, rerun.dead_lettered) == (3, 0)
    assert await recorded(db) == fold(first + later)
    assert await db.fetchval("SELECT count(*) FROM dead_letters") == 0


async def test_sigterm_bounds_a_job_stuck_on_locks_by_its_grace(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    stream = settings.names.stream
    first = await add_votes(redis_client, stream, [("cats", "ann")])
    await Job(settings).run()
    later = await add_votes(redis_client, stream, [("dogs", "ann")])
    holder = await asyncpg.connect(settings.database_url)
    log, ready = tmp_path / "job.log", tmp_path / "ready"
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT * FROM tally FOR UPDATE")
        env = job_env(
            settings,
            **{ENV_MAX_RUNTIME_S: "600", ENV_SHUTDOWN_GRACE_S: "1", ENV_READY_FILE: str(ready)},
        )
        proc = start_job(env, log)
        await asyncio.to_thread(wait_until_ready_or_done, proc, ready)
        await waiting_on_a_lock(db)
        proc.send_signal(signal.SIGTERM)  # MAX_RUNTIME_S is far off: the grace bounds it
        assert await exit_code(proc) == 1
        assert await db.fetchval("SELECT count(*) FROM vote_events") == 1
    finally:
        await holder.close()
    assert (await Job(settings).run()).outcome is Outcome.DRAINED
    assert await recorded(db) == fold(first + later)
