"""Redis at `maxmemory` (`noeviction`): votes get 503 with Retry-After, never a 500 or a 202,
and the service stays ready while its group exists (it answers; shedding is its job)."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis

from tests.support.ingest_app import make_settings, running_app, state_of, wait_until
from tests.support.oom import end_oom, make_oom
from tests.support.servers import ThrowawayRedis
from votecontract.names import StreamNames


async def test_votes_get_503_under_oom_while_ready_and_the_backlog_stays_current(
    throwaway_redis: ThrowawayRedis,
    stream_names: StreamNames,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with (
        aioredis.Redis.from_url(throwaway_redis.url) as admin,
        running_app(make_settings(throwaway_redis.url, stream_names)) as (app, client),
    ):
        assert (await client.post("/vote", json={"option": "cats"})).status_code == 202
        await make_oom(admin)
        refused = await client.post("/vote", json={"option": "cats"})
        ready = await client.get("/readyz")
        await end_oom(admin)
        accepted = await client.post("/vote", json={"option": "dogs"})
        backlog = state_of(app).backlog
        await wait_until(lambda: backlog.backlog == 2)
        metrics = (await client.get("/metrics")).text
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "redis_unavailable"
    assert ready.status_code == 200
    assert accepted.status_code == 202
    assert 'votes_rejected_total{reason="redis_unavailable"} 1.0' in metrics
    assert any("refused" in record.getMessage() for record in caplog.records)


async def test_a_missing_group_cannot_be_created_under_oom_so_not_ready(
    throwaway_redis: ThrowawayRedis, stream_names: StreamNames
) -> None:
    async with (
        aioredis.Redis.from_url(throwaway_redis.url) as admin,
        running_app(make_settings(throwaway_redis.url, stream_names)) as (_, client),
    ):
        await make_oom(admin)
        await admin.delete(stream_names.stream)  # DEL runs under OOM; XGROUP CREATE does not
        not_ready = await client.get("/readyz")
        refused = await client.post("/vote", json={"option": "cats"})
        await end_oom(admin)
        ready = await client.get("/readyz")
    assert (not_ready.status_code, ready.status_code) == (503, 200)
    assert refused.status_code == 503
