"""Ingest, the Job and the read side on a Redis Cluster (REDIS_MODE=cluster), with one stream
and with three shards, and the writer following a failover."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import asyncpg
import pytest
import redis
import redis.asyncio as aioredis

from processor.summary import Outcome
from tests.support.ingest_app import running_app, state_of
from tests.support.rediscluster import LocalCluster
from tests.support.topologies import cast, drain, entry_ms, ingest_settings, job_settings
from tests.support.votestate import fold, recorded, stream_id
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology, voter_shard

pytestmark = [pytest.mark.redis_cluster, pytest.mark.slow]

CLUSTER = RedisTopology(mode="cluster")
SHARDED = RedisTopology(mode="cluster", shards=3)


def base(prefix: str) -> StreamNames:
    return StreamNames(f"{prefix}votes", "processors")


def ballots(count: int, voters: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:6]
    return [(rng.choice(("cats", "dogs")), f"v{tag}-{rng.randrange(voters)}") for _ in range(count)]


async def test_one_stream_in_a_hash_tag_with_its_dead_letters_on_the_same_slot(
    redis_cluster: LocalCluster, cluster_prefix: str, database_url: str, db: asyncpg.Connection
) -> None:
    names = base(cluster_prefix)
    (shard,) = CLUSTER.streams(names)
    assert shard.stream == "{" + names.stream + "}"
    votes = ballots(40, 12, seed=1)
    settings = ingest_settings(redis_cluster.url, names, CLUSTER, database_url=database_url)
    async with running_app(settings) as (app, client):
        ids = await cast(client, votes)
        assert len(ids) == len(votes)
        pending = (await client.get(f"/votes/{ids[0]}")).json()
        assert pending["state"] == "pending"
        assert (await client.get("/readyz")).json()["backlog"] == len(votes)
        raw = state_of(app).redis
        # A poison entry written straight into the stream: the Job's dead-letter XADD and its
        # XACK then touch both keys, legal on a cluster only because they share a slot.
        await raw.xadd(shard.stream, {"option": "hamsters", "voter_id": "x"})
    job = await drain(job_settings(redis_cluster.url, database_url, names, CLUSTER))
    assert job.summary.outcome is Outcome.DRAINED
    assert (job.summary.recorded, job.summary.dead_lettered) == (len(votes), 1)
    expected = fold([(stream_id(i), o, v) for i, (o, v) in zip(ids, votes, strict=True)])
    assert await recorded(db) == expected
    with redis.Redis.from_url(redis_cluster.url) as node:
        assert node.cluster("keyslot", shard.dead_letter) == node.cluster("keyslot", shard.stream)
    client_ = aioredis.RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        assert await client_.xlen(shard.dead_letter) == 1
    finally:
        await client_.aclose()


async def test_three_shards_spread_voters_keep_ids_unique_and_drain_per_shard(
    redis_cluster: LocalCluster, cluster_prefix: str, database_url: str, db: asyncpg.Connection
) -> None:
    names = base(cluster_prefix)
    shards = SHARDED.streams(names)
    votes = ballots(150, 40, seed=2)
    settings = ingest_settings(redis_cluster.url, names, SHARDED, database_url=database_url)
    async with running_app(settings) as (_, client):
        ids = await cast(client, votes)
        assert len(ids) == len(votes)
        for entry_id, (_, voter) in zip(ids, votes, strict=True):
            # The ID names the voter's shard: its ms part is congruent to it modulo 3.
            assert entry_ms(entry_id) % 3 == voter_shard(voter, 3)
        assert len(set(ids)) == len(ids)
        for entry_id in random.Random(3).sample(ids, 10):
            assert (await client.get(f"/votes/{entry_id}")).json()["state"] == "pending"
        assert (await client.get("/readyz")).json()["backlog"] == len(votes)
    lengths = []
    cluster = aioredis.RedisCluster.from_url(redis_cluster.url)
    try:
        for shard in shards:
            lengths.append(await cluster.xlen(shard.stream))
    finally:
        await cluster.aclose()
    assert sum(lengths) == len(votes)
    assert all(lengths)
    for shard_index in range(3):
        job = await drain(
            job_settings(redis_cluster.url, database_url, names, SHARDED, shard_index)
        )
        assert job.summary.outcome is Outcome.DRAINED
        assert job.summary.recorded == lengths[shard_index]
    expected = fold([(stream_id(i), o, v) for i, (o, v) in zip(ids, votes, strict=True)])
    assert await recorded(db) == expected


async def test_the_writer_follows_a_failover_of_its_shards_master(
    redis_cluster: LocalCluster, cluster_prefix: str
) -> None:
    names = base(cluster_prefix)
    (shard,) = CLUSTER.streams(names)
    master = redis_cluster.master_of(shard.stream)
    settings = ingest_settings(redis_cluster.url, names, CLUSTER)
    async with running_app(settings) as (_, client):
        before = await cast(client, ballots(10, 10, seed=4))
        with redis.Redis(port=master.port, decode_responses=True) as node:
            replica_port = int(node.info("replication")["slave0"]["port"])
        with redis.Redis(port=replica_port) as replica:
            replica.cluster("failover")
        deadline = time.monotonic() + 30
        while redis_cluster.master_of(shard.stream).port != replica_port:
            assert time.monotonic() < deadline, "the replica was not promoted"
            await asyncio.sleep(0.05)
        after: list[str] = []
        for _ in range(200):
            after += await cast(client, ballots(1, 1, seed=len(after)))
            if len(after) >= 10:
                break
        assert len(after) == 10, "the writer never reached the new master"
    redis_cluster.wait_healthy()
    with redis.Redis(port=replica_port, decode_responses=True) as new_master:
        stored = {entry_id for entry_id, _ in new_master.xrange(shard.stream)}
    assert set(before) | set(after) <= stored
