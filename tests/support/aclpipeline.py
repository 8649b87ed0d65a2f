"""One vote through every component, each under its own Redis ACL user: ingest, KEDA's
metric, a processor Job, the read endpoints and ingest's pipeline metrics."""

from __future__ import annotations

import redis.asyncio as aioredis

from processor.job import Job
from processor.scaledjob.lagmetric import read_lag
from processor.settings import ProcessorSettings
from tests.support.ingest_app import make_settings, running_app
from tests.support.redisacl import AclRedis
from votecontract.names import StreamNames


def client_of(redis: AclRedis, role: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(redis.url(role), decode_responses=True)


async def run_pipeline(
    redis: AclRedis, names: StreamNames, database_url: str, admin: aioredis.Redis
) -> tuple[str, Job]:
    """A vote through ingest, KEDA's metric, a processor Job, the read endpoints: each
    component under its own user."""
    ingest = make_settings(redis.url("ingest"), names, database_url=database_url)
    async with running_app(ingest) as (_, http):
        assert (await http.get("/readyz")).status_code == 200
        response = await http.post("/vote", json={"option": "cats", "voter_id": "ann"})
        assert response.status_code == 202, response.text
        status = await http.get(response.headers["location"])
        assert status.json()["state"] == "pending", status.text
        await admin.xadd(names.stream, {"option": "fish", "voter_id": "bob", "accepted_ms": "1"})
        assert await keda_metric(redis, names) == (2, 2)
        job = await processor_job(redis, names, database_url)
        status = await http.get(response.headers["location"])
        assert status.json()["state"] == "recorded", status.text
        results = await http.get("/results")
        assert results.json()["backlog"] == 0, results.text
        assert results.json()["total"] == 1, results.text
        metrics = (await http.get("/metrics")).text
        assert 'vote_pipeline_reading_up{source="redis"} 1.0' in metrics, metrics
        assert "vote_pending_entries 0.0" in metrics, metrics
    return response.json()["id"], job


async def keda_metric(redis: AclRedis, names: StreamNames) -> tuple[int, int]:
    """The lag, and the XLEN fallback when the group is missing, as the keda user reads it."""
    keda = client_of(redis, "keda")
    try:
        reading = await read_lag(keda, names.stream, names.group)
        fallback = await read_lag(keda, names.stream, "no-such-group")
    finally:
        await keda.aclose()
    assert (reading.source, fallback.source) == ("lag", "xlen")
    return reading.metric, fallback.metric


async def processor_job(redis: AclRedis, names: StreamNames, database_url: str) -> Job:
    settings = ProcessorSettings(
        redis_url=redis.url("processor"), database_url=database_url, names=names,
        consumer="job-acl", batch_size=10, max_runtime_s=30,
    )  # fmt: skip
    job = Job(settings)
    await job.run()
    return job
