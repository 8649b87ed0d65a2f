"""Processor fixtures: the session database migrated once, emptied before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from ingest.names import StreamNames
from processor.settings import ProcessorSettings
from tests.conftest import emptied_vote_database, migrated_database


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A private database of this session with the processor schema, dropped at the end.

    Not the shared `pg_database_url`: other tests rely on that one starting empty.
    """
    with migrated_database("processor") as url:
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the migrated database, its tables emptied first."""
    async with emptied_vote_database(database_url) as conn:
        yield conn


@pytest.fixture
def settings(
    database_url: str, redis_url: str, stream_names: StreamNames, db: asyncpg.Connection
) -> ProcessorSettings:
    """Settings of a Job on this test's stream: small batches, short retries."""
    return ProcessorSettings(
        redis_url=redis_url,
        database_url=database_url,
        names=stream_names,
        consumer="job-1",
        batch_size=7,
        max_runtime_s=30,
        retry_backoff_ms=20,
        retry_backoff_max_ms=200,
    )
