"""The pipeline's PostgreSQL schema for tests that need it without the processor."""

from __future__ import annotations

import asyncpg

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
