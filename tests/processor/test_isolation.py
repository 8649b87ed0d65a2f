"""A validated vote PostgreSQL refuses for its data (class 22) is dead-lettered alone with
PostgreSQL's reason; every other vote of its batch is recorded and the Job drains."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from processor.job import Job
from processor.settings import ProcessorSettings
from processor.summary import Outcome
from tests.support.databases import migrated_database
from tests.support.votestate import add_votes, fold, random_votes, recorded
from votecontract.names import FIELD_DEAD_ORIGINAL_ID

# Plays a gap in validation: a value the processor accepts and PostgreSQL does not.
_REFUSE_ONE_VOTER = """
CREATE FUNCTION refuse_voter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.voter_id = 'refused' THEN
        RAISE EXCEPTION 'no votes from this voter' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_voter BEFORE INSERT ON vote_events
    FOR EACH ROW EXECUTE FUNCTION refuse_voter();
"""


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def refusing_database_url() -> Iterator[str]:
    with migrated_database("refusing") as url:
        asyncio.run(_execute(url, _REFUSE_ONE_VOTER))
        yield url


async def test_a_vote_postgres_refuses_is_dead_lettered_alone(
    settings: ProcessorSettings, redis_client: aioredis.Redis, refusing_database_url: str
) -> None:
    stream = settings.names.stream
    ballots = random_votes(40, 8, random.Random(9))
    ballots[5] = ballots[30] = ("cats", "refused")
    votes = await add_votes(redis_client, stream, ballots)
    refused = {"{}-{}".format(*votes[i][0]) for i in (5, 30)}
    job = Job(dataclasses.replace(settings, database_url=refusing_database_url, batch_size=16))
    summary = await job.run()
    assert summary.outcome is Outcome.DRAINED
    assert (summary.recorded, summary.dead_lettered) == (38, 2)
    db = await asyncpg.connect(refusing_database_url)
    try:
        assert await recorded(db) == fold(v for i, v in enumerate(votes) if i not in (5, 30))
        rows = await db.fetch("SELECT entry_ms, entry_seq, reason, entry_fields FROM dead_letters")
    finally:
        await db.close()
    assert {f"{row[0]}-{row[1]}" for row in rows} == refused
    assert all(row["reason"].endswith("no votes from this voter") for row in rows)
    expected = [b"option", b"cats", b"voter_id", b"refused", b"accepted_ms"]
    assert all(row["entry_fields"][:5] == expected for row in rows)
    mirrored = await redis_client.xrange(settings.names.dead_letter)
    assert {fields[FIELD_DEAD_ORIGINAL_ID] for _, fields in mirrored} == refused
    assert await redis_client.xlen(stream) == 0
