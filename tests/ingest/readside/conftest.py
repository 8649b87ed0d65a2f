"""Fixtures of the read side (results, vote status, live stream, page): a database migrated by
the processor's migrations, emptied before each test, and the ingest app with its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from ingest.settings import IngestSettings
from tests.support.databases import emptied_vote_database, migrated_database
from tests.support.readside import OPTIONS, read_client
from votecontract.names import StreamNames


@pytest.fixture(scope="session")
def read_database_url() -> Iterator[str]:
    """A database of this session's own with the vote schema, dropped at the end.

    Not `pg_database_url`: these tests empty the tables before each test, which must not
    disturb what the processor's tests keep there."""
    with migrated_database("read") as url:
        yield url


@pytest.fixture
async def pg(read_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the read database, emptied first (tests run one at a time)."""
    async with emptied_vote_database(read_database_url) as conn:
        yield conn


@pytest.fixture
def read_settings(
    read_database_url: str, redis_url: str, stream_names: StreamNames
) -> IngestSettings:
    return IngestSettings(
        database_url=read_database_url,
        redis_url=redis_url,
        names=stream_names,
        options=OPTIONS,
        results_poll_s=0.1,
        sse_heartbeat_s=1.0,
        backlog_refresh_s=0.1,
        # Long: a loaded machine must not turn a slow round trip into a 503.
        redis_timeout_s=10.0,
        database_timeout_s=10.0,
    )


@pytest.fixture
async def read_http(read_settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with read_client(read_settings) as http:
        yield http
