"""VOTE_SHARDS on a standalone Redis: voters routed by a stable hash, IDs unique over shards and
naming their shard, and a changed shard count refused while the old layout holds votes."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis

from ingest.pipelinemetrics.stream import StreamReading, combined
from ingest.shards import ADD_SCRIPT, LayoutError
from tests.support.ingest_app import running_app
from tests.support.servers import ThrowawayRedis
from tests.support.topologies import cast, drain, entry_ms, ingest_settings, job_settings
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology, layout_key, voter_shard

THREE = RedisTopology(shards=3)


async def test_voters_stay_on_their_shard_and_ids_name_it(
    redis_url: str, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    votes = [(("cats", "dogs")[i % 2], f"voter-{i % 17}") for i in range(90)]
    async with running_app(ingest_settings(redis_url, stream_names, THREE)) as (_, client):
        ids = await cast(client, votes)
    assert len(ids) == len(set(ids)) == len(votes)
    shards = THREE.streams(stream_names)
    where = {}
    for index, names in enumerate(shards):
        for entry_id, fields in await redis_client.xrange(names.stream):
            assert entry_ms(entry_id) % 3 == index
            where.setdefault(fields["voter_id"], set()).add(index)
    assert {voter: shards_of for voter, shards_of in where.items() if len(shards_of) > 1} == {}
    assert all(where[voter] == {voter_shard(voter, 3)} for voter in where)
    assert await redis_client.get(layout_key(stream_names)) == "3"


async def test_the_script_moves_past_a_stream_whose_last_id_is_ahead_of_the_clock(
    stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    """A clock stepped back must not make XADD fail: the ID continues after the last one, in
    the shard's residue class."""
    await redis_client.xadd(stream_names.stream, {"x": "1"}, id="99999999999997-5")
    ids = [
        await redis_client.eval(
            ADD_SCRIPT, 1, stream_names.stream, shard, 3, "option", "cats", "voter_id", "v"
        )
        for shard in (1, 2)
    ]
    # 99999999999997 is in shard 1's class already: the next sequence number of that ms.
    assert ids == ["99999999999997-6", "99999999999998-0"]


async def test_a_changed_shard_count_is_refused_until_the_old_layout_drained(
    redis_url: str,
    stream_names: StreamNames,
    redis_client: aioredis.Redis,
    database_url: str,
    db: asyncpg.Connection,
) -> None:
    one = RedisTopology()
    async with running_app(ingest_settings(redis_url, stream_names, one)) as (_, client):
        assert len(await cast(client, [("cats", "ann"), ("dogs", "bob")])) == 2
    with pytest.raises(LayoutError, match=r"VOTE_SHARDS=3.*1-shard layout"):
        async with running_app(ingest_settings(redis_url, stream_names, THREE)):
            pass
    assert await redis_client.get(layout_key(stream_names)) == "1"
    await drain(job_settings(redis_url, database_url, stream_names, one))
    async with running_app(ingest_settings(redis_url, stream_names, THREE)) as (_, client):
        assert len(await cast(client, [("cats", "ann")])) == 1
    assert await redis_client.get(layout_key(stream_names)) == "3"


def test_the_pipeline_metrics_of_the_shards_add_up() -> None:
    one = StreamReading(length=5, pending=2, oldest_pending_age_s=3.0, oldest_undelivered_age_s=1.0)
    two = StreamReading(length=1, pending=0, oldest_pending_age_s=0.0, oldest_undelivered_age_s=9.0)
    assert combined([one, None, two]) == StreamReading(6, 2, 3.0, 9.0)
    assert combined([None, None]) is None


async def test_an_acl_user_without_the_layout_key_still_votes_with_one_shard(
    throwaway_redis: ThrowawayRedis, stream_names: StreamNames
) -> None:
    """An ACL user made before VOTE_SHARDS existed (no GET on `<stream>:shards`)."""
    async with aioredis.Redis.from_url(throwaway_redis.url) as admin:
        rule = "on >pw +select +xadd +xgroup|create +xinfo|groups +xlen +xrange ~*"
        await admin.execute_command("ACL", "SETUSER", "old-ingest", *rule.split())
    url = throwaway_redis.url.replace("redis://", "redis://old-ingest:pw@")
    async with running_app(ingest_settings(url, stream_names, RedisTopology())) as (_, client):
        assert len(await cast(client, [("cats", "ann")])) == 1
    # More shards need the key: votes are refused until the user may read it.
    async with running_app(ingest_settings(url, stream_names, THREE)) as (_, client):
        assert await cast(client, [("cats", "ann")]) == []
        assert (await client.get("/readyz")).status_code == 503
