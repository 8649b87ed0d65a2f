"""The pipeline's PostgreSQL schema for tests that need it without the processor."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from tests.conftest import TEST_PG_ADMIN_URL, _admin_execute, _dsn_with_database

# The schema of the team brief's contract; the processor's migrations create the same tables.
VOTE_SCHEMA = """
CREATE TABLE IF NOT EXISTS vote_events (
    entry_ms bigint NOT NULL, entry_seq bigint NOT NULL, option text NOT NULL,
    voter_id text NOT NULL, accepted_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (entry_ms, entry_seq));
CREATE TABLE IF NOT EXISTS ballots (
    voter_id text PRIMARY KEY, option text NOT NULL, entry_ms bigint NOT NULL,
    entry_seq bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS tally (
    option text PRIMARY KEY, votes bigint NOT NULL DEFAULT 0 CHECK (votes >= 0));
CREATE TABLE IF NOT EXISTS dead_letters (
    entry_ms bigint NOT NULL, entry_seq bigint NOT NULL, reason text NOT NULL,
    fields jsonb NOT NULL, dead_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entry_ms, entry_seq));
"""


async def create_vote_schema(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(VOTE_SCHEMA)
    finally:
        await conn.close()


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
