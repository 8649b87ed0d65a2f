"""Processor fixtures: the session database migrated once, emptied before each test."""

from __future__ import annotations

import asyncpg
import pytest

from processor.settings import ProcessorSettings
from votecontract.names import StreamNames


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
