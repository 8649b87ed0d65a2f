"""Ingest, the Job and the read side behind Sentinel (REDIS_MODE=sentinel), and both following
a failover."""

from __future__ import annotations

import random
import uuid

import asyncpg
import pytest
import redis

from processor.summary import Outcome
from tests.support.ingest_app import running_app
from tests.support.redissentinel import MASTER_NAME, LocalSentinel
from tests.support.topologies import cast, drain, ingest_settings, job_settings
from tests.support.votestate import fold, recorded, stream_id
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology

pytestmark = [pytest.mark.redis_sentinel, pytest.mark.slow]


def topology(setup: LocalSentinel, shards: int = 1) -> RedisTopology:
    return RedisTopology(
        mode="sentinel",
        sentinels=tuple(("127.0.0.1", sentinel.port) for sentinel in setup.sentinels),
        sentinel_master=MASTER_NAME,
        shards=shards,
    )


def ballots(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:6]
    return [(rng.choice(("cats", "dogs")), f"v{tag}-{rng.randrange(count)}") for _ in range(count)]


async def test_votes_go_to_the_master_the_sentinels_name_and_a_job_drains_them(
    redis_sentinel: LocalSentinel, sentinel_prefix: str, database_url: str, db: asyncpg.Connection
) -> None:
    names = StreamNames(f"{sentinel_prefix}votes", "processors")
    mode = topology(redis_sentinel, shards=2)
    votes = ballots(60, seed=1)
    settings = ingest_settings(redis_sentinel.url, names, mode, database_url=database_url)
    async with running_app(settings) as (_, client):
        ids = await cast(client, votes)
        assert len(ids) == len(votes)
        assert (await client.get(f"/votes/{ids[-1]}")).json()["state"] == "pending"
    with redis.Redis(port=redis_sentinel.master_port()) as master:
        assert sum(master.xlen(shard.stream) for shard in mode.streams(names)) == len(votes)
    for shard in range(2):
        job = await drain(job_settings(redis_sentinel.url, database_url, names, mode, shard))
        assert job.summary.outcome is Outcome.DRAINED
    expected = fold([(stream_id(i), o, v) for i, (o, v) in zip(ids, votes, strict=True)])
    assert await recorded(db) == expected


async def test_writer_and_job_follow_a_sentinel_failover(
    fresh_sentinel: LocalSentinel, database_url: str, db: asyncpg.Connection
) -> None:
    """Once the sentinels have promoted the replica and demoted the old master, every vote
    answered 202 is on the new master. (Votes the old master acknowledged between the
    promotion and its demotion are lost without ACK_DURABILITY=replica: test_failover_loss.)"""
    names = StreamNames("votes", "processors")
    mode = topology(fresh_sentinel)
    settings = ingest_settings(fresh_sentinel.url, names, mode, database_url=database_url)
    async with running_app(settings) as (_, client):
        await cast(client, ballots(20, seed=2))
        old = fresh_sentinel.master_port()
        new = fresh_sentinel.failover()
        assert new != old
        fresh_sentinel.wait_settled(new)
        after: list[str] = []
        for attempt in range(400):
            after += await cast(client, ballots(1, seed=attempt))
            if len(after) >= 20:
                break
        assert len(after) == 20, "the writer never reached the new master"
    job = await drain(job_settings(fresh_sentinel.url, database_url, names, mode))
    assert job.summary.outcome is Outcome.DRAINED
    stored = {f"{ms}-{seq}" for ms, seq in (await recorded(db)).events}
    assert set(after) <= stored
