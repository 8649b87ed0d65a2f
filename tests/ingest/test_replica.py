"""ACK_DURABILITY=replica: a 202 only once a replica has the vote (one WAIT per batch), and a
503 within ACK_REPLICA_TIMEOUT_S when no replica confirms it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ingest.durability import Durability
from tests.support.ingest_app import make_settings, running_app, state_of
from tests.support.redispair import (
    PRIMARY,
    pause,
    replica_of,
    resume,
    running,
    throwaway,
    wait_for_replicas,
)
from votecontract.names import StreamNames


async def test_a_vote_is_answered_once_the_replica_has_it_and_503_while_it_hangs(
    tmp_path: Path, stream_names: StreamNames
) -> None:
    primary = throwaway(tmp_path / "primary", *PRIMARY)
    replica = replica_of(primary, tmp_path / "replica")
    settings = make_settings(
        primary.url,
        stream_names,
        ack_durability=Durability.REPLICA,
        redis_timeout_s=2.0,
        ack_replica_timeout_s=0.3,
    )
    with running(primary, replica):
        async with (
            aioredis.Redis.from_url(primary.url, decode_responses=True) as on_primary,
            aioredis.Redis.from_url(replica.url, decode_responses=True) as on_replica,
        ):
            await wait_for_replicas(on_primary, 1)
            async with running_app(settings) as (app, client):
                accepted = await client.post("/vote", json={"option": "cats", "voter_id": "a"})
                # Read at once, no polling: WAIT returned only after the replica had applied it.
                on_replica_now = await on_replica.xrange(stream_names.stream)
                pause(replica)
                refused = await client.post("/vote", json={"option": "dogs", "voter_id": "a"})
                resume(replica)
                await wait_for_replicas(on_primary, 1)
                again = await client.post("/vote", json={"option": "dogs", "voter_id": "a"})
                metrics = state_of(app).metrics.registry
            stored = await on_primary.xrange(stream_names.stream)
    assert accepted.status_code == 202
    assert [entry_id for entry_id, _ in on_replica_now] == [accepted.json()["id"]]
    assert refused.status_code == 503
    assert refused.json()["error"] == "not_replicated"
    assert refused.headers["retry-after"] == "1"
    assert again.status_code == 202
    # The unconfirmed vote is on the primary all the same: 503 means "not confirmed".
    assert len(stored) == 3
    rejected = metrics.get_sample_value("votes_rejected_total", {"reason": "not_replicated"})
    assert rejected == 1


async def test_many_concurrent_votes_share_a_wait_per_batch(
    tmp_path: Path, stream_names: StreamNames
) -> None:
    primary = throwaway(tmp_path / "primary", *PRIMARY)
    replica = replica_of(primary, tmp_path / "replica")
    settings = make_settings(
        primary.url, stream_names, ack_durability=Durability.REPLICA, redis_timeout_s=5.0
    )
    with running(primary, replica):
        async with aioredis.Redis.from_url(primary.url) as on_primary:
            await wait_for_replicas(on_primary, 1)
            await on_primary.config_resetstat()
            async with running_app(settings) as (app, client):
                responses = await asyncio.gather(
                    *(client.post("/vote", json={"option": "cats"}) for _ in range(200))
                )
                registry = state_of(app).metrics.registry
                batches = registry.get_sample_value("vote_write_batch_size_count")
            calls = await on_primary.info("commandstats")
    assert {response.status_code for response in responses} == {202}
    assert batches is not None
    assert batches < 200
    assert calls["cmdstat_wait"]["calls"] == batches


async def test_an_acl_user_without_wait_gets_503_and_a_log_line(
    tmp_path: Path, stream_names: StreamNames, caplog: pytest.LogCaptureFixture
) -> None:
    primary = throwaway(tmp_path / "primary")
    url = primary.url.replace("redis://", "redis://ingest:pw@")
    settings = make_settings(url, stream_names, ack_durability=Durability.REPLICA)
    with running(primary):
        async with aioredis.Redis.from_url(primary.url) as admin:
            # All that ingest needs (helm/files/redis-users.acl) but WAIT.
            rule = "on >pw +select +xadd +xgroup|create +xinfo|groups +xlen +get +set +evalsha"
            rule += " +script|load +time +xinfo|stream +config|get ~*"
            await admin.execute_command("ACL", "SETUSER", "ingest", *rule.split())
        async with running_app(settings) as (_, client):
            response = await client.post("/vote", json={"option": "cats"})
    assert response.status_code == 503
    assert any("refused WAIT" in record.getMessage() for record in caplog.records)
