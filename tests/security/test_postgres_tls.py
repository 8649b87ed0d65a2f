"""DATABASE_URL with sslmode=verify-full and sslrootcert: migrations, a processor Job and the
read endpoints against a PostgreSQL that accepts TLS connections only."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from processor.job import Job
from processor.migrate import migrate
from processor.settings import ProcessorSettings
from tests.support.certs import TlsFiles
from tests.support.ingest_app import make_settings, running_app
from tests.support.tlspostgres import TlsPostgres, start_tls_postgres
from votecontract.names import StreamNames

pytestmark = pytest.mark.security


@pytest.fixture(scope="module")
def tls_postgres(tls_files: TlsFiles) -> Iterator[TlsPostgres]:
    server = start_tls_postgres(tls_files)
    try:
        yield server
    finally:
        server.stop()


async def test_migrations_a_job_and_the_read_side_over_verified_tls(
    tls_postgres: TlsPostgres,
    redis_url: str,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
) -> None:
    url = tls_postgres.url(f"?sslmode=verify-full&sslrootcert={tls_postgres.ca}")
    await migrate(url)
    async with running_app(make_settings(redis_url, stream_names, database_url=url)) as (_, http):
        response = await http.post("/vote", json={"option": "cats", "voter_id": "ann"})
        assert response.status_code == 202
        settings = ProcessorSettings(
            redis_url=redis_url, database_url=url, names=stream_names, consumer="job-tls",
            max_runtime_s=30,
        )  # fmt: skip
        job = Job(settings)
        await job.run()
        assert job.summary.recorded == 1
        status = await http.get(response.headers["location"])
        assert status.json()["state"] == "recorded", status.text
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("?sslmode=disable", id="plain connection"),
        pytest.param(
            "?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt",
            id="server certificate not from a trusted CA",
        ),
    ],
)
async def test_a_connection_without_verified_tls_is_refused(
    tls_postgres: TlsPostgres, query: str
) -> None:
    with pytest.raises((asyncpg.InvalidAuthorizationSpecificationError, ssl.SSLError)):
        await asyncpg.connect(tls_postgres.url(query), timeout=30)
