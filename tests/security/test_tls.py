"""rediss:// with a CA and a client certificate: a vote through ingest, KEDA's metric and a
processor Job against a redis-server that speaks only TLS and requires client certificates."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from processor.summary import Outcome
from tests.support.aclpipeline import run_pipeline
from tests.support.redisacl import ADMIN, AclRedis
from votecontract.names import StreamNames

pytestmark = pytest.mark.security


async def test_ingest_keda_metric_and_a_job_work_over_tls(
    tls_redis: AclRedis, stream_names: StreamNames, database_url: str, db: asyncpg.Connection
) -> None:
    admin = aioredis.Redis.from_url(tls_redis.url(ADMIN), decode_responses=True)
    try:
        vote_id, job = await run_pipeline(tls_redis, stream_names, database_url, admin)
        assert await admin.xlen(stream_names.stream) == 0
    finally:
        await admin.aclose()
    assert job.summary.outcome is Outcome.DRAINED
    assert job.summary.recorded == 1
    ms, seq = map(int, vote_id.split("-"))
    assert (
        await db.fetchval(
            "SELECT count(*) FROM vote_events WHERE (entry_ms, entry_seq) = ($1, $2)", ms, seq
        )
        == 1
    )


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("", id="server certificate not trusted (no CA given)"),
        pytest.param("?ssl_ca_certs={ca}", id="no client certificate"),
        pytest.param("plain", id="plain redis:// to a TLS port"),
    ],
)
async def test_a_connection_without_the_right_certificates_is_refused(
    tls_redis: AclRedis, query: str
) -> None:
    url = tls_redis.url("keda")
    base = url.partition("?")[0]
    if query == "plain":
        url = base.replace("rediss://", "redis://", 1)
    else:
        url = base + query.format(ca=tls_redis.query.split("ssl_ca_certs=")[1].split("&")[0])
    client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        with pytest.raises((RedisConnectionError, TimeoutError)):
            await client.ping()
    finally:
        await client.aclose()
