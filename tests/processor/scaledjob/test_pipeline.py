"""End to end: the local runner starts the real processor (`python -m processor`) on real
Redis and PostgreSQL, from keda/scaledjob.yaml with private stream names and small limits."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from processor.scaledjob.lagmetric import read_lag
from processor.scaledjob.localjobs import JobState, LocalJobs
from processor.scaledjob.manifest import parse_manifest
from processor.scaledjob.runner import ScaledJobRunner
from processor.scaledjob.scaling import Decision
from tests.support.databases import migrated_database
from tests.support.keda_manifest import env_items, scaledjob_document
from votecontract.names import ENV_DATABASE_URL, ENV_REDIS_URL, StreamNames

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

RunnerFactory = Callable[..., ScaledJobRunner]


@pytest.fixture(scope="module")
def migrated_database_url() -> Iterator[str]:
    """A migrated database of this module's own (the shared `pg_database_url` stays empty)."""
    with migrated_database("runner") as url:
        yield url


@pytest.fixture
async def make_runner(
    tmp_path: Path, stream_names: StreamNames, redis_url: str, migrated_database_url: str
) -> AsyncIterator[RunnerFactory]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    made: list[LocalJobs] = []

    def make(batch_size: int, **spec: Any) -> ScaledJobRunner:
        document = scaledjob_document(stream_names, **spec)
        for item in env_items(document):
            if item["name"] == "BATCH_SIZE":
                item["value"] = str(batch_size)
        host_env = {
            "PATH": os.environ["PATH"],
            ENV_REDIS_URL: redis_url,
            ENV_DATABASE_URL: migrated_database_url,
        }
        jobs = LocalJobs(
            parse_manifest(document),
            tmp_path,
            host_env=host_env,
            pod_backoff_s=0.0,
            log_files=True,
        )
        made.append(jobs)
        return ScaledJobRunner(jobs.manifest, jobs, client, 0.3, out=io.StringIO())

    yield make
    for jobs in made:
        jobs.kill_all()
    await client.aclose()


async def cast_votes(client: aioredis.Redis, names: StreamNames, count: int) -> str:
    """`count` votes from distinct voters, as ingest writes them; returns their voter prefix."""
    prefix = f"e2e-{uuid.uuid4().hex[:8]}-"
    await client.xgroup_create(names.stream, names.group, id="0", mkstream=True)
    async with client.pipeline(transaction=False) as pipe:
        for i in range(count):
            fields = {"option": ("cats", "dogs")[i % 2], "voter_id": f"{prefix}{i}"}
            pipe.xadd(names.stream, {**fields, "accepted_ms": str(int(time.time() * 1000))})
        await pipe.execute()
    return prefix


async def run_until_drained(runner: ScaledJobRunner, names: StreamNames) -> list[Decision]:
    decisions: list[Decision] = []
    # Generous: each Job is a Python process starting up on a machine that may be loaded.
    deadline = time.monotonic() + 100
    while time.monotonic() < deadline:
        decision = await runner.poll_once()
        assert decision is not None
        decisions.append(decision)
        lag = await read_lag(runner.client, names.stream, names.group)
        if decision.running == 0 and lag.metric == 0 and not runner.jobs.unfinished:
            return decisions
        await asyncio.sleep(runner.polling_interval_s)
    raise AssertionError(f"not drained in 100 s: {decisions[-3:]}")


async def appears(path: Path, timeout_s: float = 30.0) -> bool:
    for _ in range(int(timeout_s / 0.005)):
        if os.path.exists(path):  # noqa: ASYNC240 (a stat per 5 ms poll)
            return True
        await asyncio.sleep(0.005)
    return False


async def recorded(database_url: str, prefix: str) -> tuple[int, int, dict[str, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        events = await conn.fetchval(
            "SELECT count(*) FROM vote_events WHERE voter_id LIKE $1", prefix + "%"
        )
        ballots = await conn.fetch(
            "SELECT option, count(*) AS n FROM ballots WHERE voter_id LIKE $1 GROUP BY option",
            prefix + "%",
        )
    finally:
        await conn.close()
    per_option = {row["option"]: row["n"] for row in ballots}
    return events, sum(per_option.values()), per_option


async def tally(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        return {row["option"]: row["votes"] for row in await conn.fetch("SELECT * FROM tally")}
    finally:
        await conn.close()


async def test_burst_scales_with_the_lag_records_every_vote_and_returns_to_zero(
    make_runner: RunnerFactory,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
    migrated_database_url: str,
) -> None:
    runner = make_runner(20, lagCount=50, maxReplicaCount=10)
    prefix = await cast_votes(redis_client, stream_names, 300)
    before = await tally(migrated_database_url)

    decisions = await run_until_drained(runner, stream_names)

    assert (decisions[0].queue_length, decisions[0].create) == (300, 6)
    assert decisions[-1].running == 0
    events, ballots, per_option = await recorded(migrated_database_url, prefix)
    assert (events, ballots) == (300, 300)
    after = await tally(migrated_database_url)
    assert {o: after.get(o, 0) - before.get(o, 0) for o in per_option} == per_option
    assert (await redis_client.xpending(stream_names.stream, stream_names.group))["pending"] == 0
    assert all(job.state is JobState.COMPLETE for job in runner.jobs.jobs)


async def test_job_killed_mid_batch_is_retried_under_its_name_losing_and_doubling_nothing(
    make_runner: RunnerFactory,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
    migrated_database_url: str,
) -> None:
    runner = make_runner(10, lagCount=1000, backoffLimit=2, successfulJobsHistoryLimit=100)
    prefix = await cast_votes(redis_client, stream_names, 1000)
    before = await tally(migrated_database_url)
    first = await runner.poll_once()
    assert first is not None
    assert first.create == 1
    (job,) = runner.jobs.jobs
    ready_file = runner.jobs.mounts(job)["/run/processor"] / "ready"
    assert await appears(ready_file)  # the processor has read its first batch
    assert job.process is not None
    os.killpg(job.process.pid, signal.SIGKILL)

    await run_until_drained(runner, stream_names)

    assert (job.state, job.failures, len(job.pod_names)) == (JobState.COMPLETE, 1, 2)
    events, ballots, per_option = await recorded(migrated_database_url, prefix)
    assert (events, ballots) == (1000, 1000)
    after = await tally(migrated_database_url)
    assert {o: after.get(o, 0) - before.get(o, 0) for o in per_option} == per_option
    # Consumers are Job names only: the retried pod came back as the killed Job's consumer.
    consumers = await redis_client.xinfo_consumers(stream_names.stream, stream_names.group)
    assert {c["name"] for c in consumers} <= {j.name for j in runner.jobs.jobs}
    assert (await redis_client.xpending(stream_names.stream, stream_names.group))["pending"] == 0
