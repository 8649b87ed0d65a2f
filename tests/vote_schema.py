"""A private PostgreSQL database with the pipeline's schema, for tests that record votes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from processor.migrate import migrate
from tests.conftest import TEST_PG_ADMIN_URL, _admin_execute, _dsn_with_database


async def create_vote_schema(database_url: str) -> None:
    """The processor's own migrations, so the checks run against the real schema."""
    await migrate(database_url)


@contextmanager
def private_vote_database(label: str) -> Iterator[str]:
    """A database of a test module's own with the schema: entry IDs of different test streams
    may coincide, so a module that records votes must not share the session database."""
    name = f"vote_test_{label}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    url = _dsn_with_database(TEST_PG_ADMIN_URL, name)
    try:
        asyncio.run(create_vote_schema(url))
        yield url
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
