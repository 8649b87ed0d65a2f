"""Settings and steps the topology tests share: ingest and a Job in a given REDIS_MODE and
VOTE_SHARDS, votes cast over HTTP, and what each shard's stream holds."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from ingest.settings import IngestSettings
from processor.job import Job
from processor.settings import ProcessorSettings
from tests.support.ingest_app import make_settings
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology


def ingest_settings(
    url: str, base: StreamNames, topology: RedisTopology, **overrides: Any
) -> IngestSettings:
    return make_settings(url, base, topology=topology, **overrides)


def job_settings(
    url: str,
    database_url: str,
    base: StreamNames,
    topology: RedisTopology,
    shard: int = 0,
    **overrides: Any,
) -> ProcessorSettings:
    """A Job on shard `shard` of `topology`, as `VOTE_SHARD=<shard>` would configure it."""
    settings = ProcessorSettings(
        redis_url=url,
        database_url=database_url,
        names=topology.streams(base)[shard],
        topology=topology,
        consumer=f"job-{shard}",
        batch_size=50,
        max_runtime_s=60,
        retry_backoff_ms=20,
        retry_backoff_max_ms=200,
    )
    return dataclasses.replace(settings, **overrides)


async def drain(settings: ProcessorSettings) -> Job:
    job = Job(settings)
    await job.run()
    return job


async def cast(client: httpx.AsyncClient, votes: list[tuple[str, str]]) -> list[str]:
    """POST each (option, voter) vote; the IDs of those answered 202, in order."""
    accepted = []
    for option, voter in votes:
        response = await client.post("/vote", json={"option": option, "voter_id": voter})
        assert response.status_code in (202, 503), response.text
        if response.status_code == 202:
            accepted.append(response.json()["id"])
    return accepted


def entry_ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])
