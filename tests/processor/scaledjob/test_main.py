"""The runner loop against the real Redis, with a tiny consumer standing in for the processor."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from processor.scaledjob.localjobs import LocalJobs
from processor.scaledjob.manifest import parse_manifest
from processor.scaledjob.runner import ScaledJobRunner
from tests.support.keda_manifest import scaledjob_document, write_scaledjob
from tests.support.servers import ThrowawayRedis
from votecontract.names import StreamNames

# Drains the group under JOB_NAME, 10 at a time, and records which consumer acked each entry.
FAKE_CONSUMER = r"""
import os, pathlib, redis
r = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
stream, group, me = os.environ["VOTE_STREAM"], os.environ["VOTE_GROUP"], os.environ["JOB_NAME"]
ready = pathlib.Path(os.environ["READY_FILE"])
while True:
    got = r.xreadgroup(group, me, {stream: ">"}, count=10)
    ready.touch()
    if not got or not got[0][1]:
        break
    ids = [entry_id for entry_id, _ in got[0][1]]
    r.rpush(stream + ":acked", *ids)
    r.xack(stream, group, *ids)
"""
CONSUMER = (sys.executable, "-c", FAKE_CONSUMER)


@pytest.fixture
async def runner(
    tmp_path: Path, stream_names: StreamNames, redis_url: str
) -> AsyncIterator[ScaledJobRunner]:
    manifest = parse_manifest(scaledjob_document(stream_names, lagCount=10, maxReplicaCount=20))
    env = {"PATH": os.environ["PATH"], "REDIS_URL": redis_url}
    jobs = LocalJobs(manifest, tmp_path, command=CONSUMER, host_env=env, log_files=True)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield ScaledJobRunner(manifest, jobs, client, 0.1, out=io.StringIO())
    jobs.kill_all()
    await client.aclose()


async def burst(client: aioredis.Redis, names: StreamNames, count: int) -> None:
    await client.xgroup_create(names.stream, names.group, id="0", mkstream=True)
    for i in range(count):
        await client.xadd(names.stream, {"option": "cats", "voter_id": f"v{i}"})


async def test_burst_starts_jobs_in_proportion_and_drains_to_zero(
    runner: ScaledJobRunner, redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    await burst(redis_client, stream_names, 35)

    first = await runner.poll_once()
    async with asyncio.timeout(90):  # until drained: Jobs start and finish at the machine's pace
        while True:
            decision = await runner.poll_once()
            if decision is not None and decision.running == 0 and decision.queue_length == 0:
                break
            await asyncio.sleep(0.05)

    assert first is not None
    assert (first.queue_length, first.create) == (35, 4)
    assert decision is not None
    assert (decision.running, decision.create) == (0, 0)
    acked = await redis_client.lrange(stream_names.stream + ":acked", 0, -1)
    assert len(acked) == len(set(acked)) == 35
    assert (await redis_client.xpending(stream_names.stream, stream_names.group))["pending"] == 0


async def test_max_replica_count_from_the_manifest_caps_the_jobs_started(
    tmp_path: Path, stream_names: StreamNames, redis_url: str, redis_client: aioredis.Redis
) -> None:
    document = scaledjob_document(stream_names, lagCount=10, maxReplicaCount=3)
    manifest = parse_manifest(document)
    jobs = LocalJobs(manifest, tmp_path, command=(sys.executable, "-c", "pass"), host_env={})
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await burst(redis_client, stream_names, 100)  # a lag of 10 Jobs' worth
        runner = ScaledJobRunner(manifest, jobs, client, 0.1, out=io.StringIO())
        decision = await runner.poll_once()
    finally:
        jobs.kill_all()
        for job in jobs.jobs:
            if job.process is not None:
                job.process.wait(timeout=60)
        await client.aclose()
    assert decision is not None
    assert (decision.queue_length, decision.max_scale, decision.create) == (100, 3, 3)
    assert len(jobs.jobs) == 3


async def test_missing_stream_starts_nothing(runner: ScaledJobRunner) -> None:
    decision = await runner.poll_once()
    assert decision is not None
    assert (decision.active, decision.create) == (False, 0)
    assert isinstance(runner.out, io.StringIO)
    assert "metric=0 active=no running=0 pending=0" in runner.out.getvalue()


def test_cli_prints_decisions_and_stops_on_sigint(
    tmp_path: Path, stream_names: StreamNames, redis_url: str
) -> None:
    manifest = write_scaledjob(tmp_path / "scaledjob.yaml", stream_names)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "processor.scaledjob",
            str(manifest),
            "--polling-interval",
            "0.2",
            "--redis-url",
            redis_url,
            "--command",
            f"{sys.executable} -c pass",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert first_line.startswith("vote-processor: metric=0 active=no running=0 pending=0")
    assert out.rstrip().endswith("vote-processor: stopped, no Job running")


async def test_unreachable_redis_is_reported_and_starts_nothing(
    tmp_path: Path, stream_names: StreamNames, throwaway_redis: ThrowawayRedis
) -> None:
    manifest = parse_manifest(scaledjob_document(stream_names))
    jobs = LocalJobs(manifest, tmp_path, command=CONSUMER, host_env={})
    client = aioredis.Redis.from_url(throwaway_redis.url, decode_responses=True)
    out = io.StringIO()
    runner = ScaledJobRunner(manifest, jobs, client, 0.1, out=out)
    throwaway_redis.stop()
    try:
        assert await runner.poll_once() is None
    finally:
        await client.aclose()
    assert "metric=error (ConnectionError) running=0 pending=0 created=0" in out.getvalue()
    assert not jobs.jobs
