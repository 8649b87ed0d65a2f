"""Stream IDs beyond PostgreSQL's bigint (anyone allowed to XADD can write one, and from then
on Redis hands out such IDs for `*` too): such entries are dead-lettered with a reason and
hold up no vote, ingest never answers 202 with one, the status endpoint tells what became of
them, and the documented reset (scripts/reset-stream-ids.lua) brings the pipeline back."""

from __future__ import annotations

import logging

import asyncpg
import pytest
import redis.asyncio as aioredis

from processor.job import Job
from processor.settings import ProcessorSettings
from processor.summary import Outcome
from tests.support.ingest_app import make_settings, running_app
from tests.support.paths import ROOT
from tests.support.votestate import recorded, stream_id
from votecontract.names import FIELD_DEAD_ORIGINAL_ID, FIELD_DEAD_REASON, StreamNames

BIGINT_MAX = 2**63 - 1
RESET_SCRIPT = ROOT / "scripts" / "reset-stream-ids.lua"


def vote(option: str, voter: str) -> list[str]:
    return ["option", option, "voter_id", voter, "accepted_ms", "1700000000000"]


def job_settings(
    database_url: str, redis_url: str, names: StreamNames, **changes: object
) -> ProcessorSettings:
    return ProcessorSettings(
        redis_url=redis_url, database_url=database_url, names=names, batch_size=3,
        max_runtime_s=30, retry_backoff_ms=20, retry_backoff_max_ms=200, **changes,  # type: ignore[arg-type]
    )  # fmt: skip


async def xadd(redis: aioredis.Redis, stream: str, entry_id: str, fields: list[str]) -> str:
    added = await redis.execute_command("XADD", stream, entry_id, *fields)
    return added.decode() if isinstance(added, bytes) else str(added)


async def dead_letters(db: asyncpg.Connection) -> dict[str, str]:
    rows = await db.fetch("SELECT entry_ms::text, entry_seq::text, reason FROM dead_letters")
    return {f"{row[0]}-{row[1]}": row[2] for row in rows}


async def test_entries_beyond_bigint_are_dead_lettered_and_hold_up_no_vote(
    database_url: str,
    redis_url: str,
    db: asyncpg.Connection,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
) -> None:
    stream = stream_names.stream
    now = await xadd(redis_client, stream, "*", vote("cats", "ann"))
    at_max = await xadd(redis_client, stream, f"{BIGINT_MAX}-5", vote("dogs", "bob"))
    beyond = [
        await xadd(redis_client, stream, f"{BIGINT_MAX}-{BIGINT_MAX + 1}", vote("dogs", "cy")),
        await xadd(redis_client, stream, f"{BIGINT_MAX + 1}-0", vote("cats", "dee")),
        await xadd(redis_client, stream, "*", vote("cats", "eve")),  # Redis goes on from there
        await xadd(redis_client, stream, "*", ["option", "x", "option", "cats", "voter_id", "f"]),
        await xadd(redis_client, stream, f"{2**64 - 1}-0", vote("cats", "gus")),
    ]
    assert beyond[2] == f"{BIGINT_MAX + 1}-1"
    job = Job(job_settings(database_url, redis_url, stream_names))
    summary = await job.run()
    assert summary.outcome is Outcome.DRAINED
    assert (await recorded(db)).events == {
        stream_id(now): ("cats", "ann"),
        stream_id(at_max): ("dogs", "bob"),
    }
    dead = await dead_letters(db)
    assert set(dead) == set(beyond)
    assert all("bigint" in reason for reason in dead.values()), dead
    exact = await db.fetchval(
        "SELECT entry_fields FROM dead_letters WHERE entry_ms = $1::numeric", str(2**64 - 1)
    )
    assert exact == [part.encode() for part in vote("cats", "gus")]
    mirrored = await redis_client.xrange(stream_names.dead_letter)
    assert {fields[FIELD_DEAD_ORIGINAL_ID] for _, fields in mirrored} == set(beyond)
    assert all("bigint" in fields[FIELD_DEAD_REASON] for _, fields in mirrored)
    assert await redis_client.xlen(stream) == 0
    assert (await redis_client.xpending(stream, stream_names.group))["pending"] == 0


async def test_ingest_answers_503_rather_than_202_with_an_id_beyond_bigint(
    redis_url: str,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    await xadd(redis_client, stream_names.stream, f"{BIGINT_MAX + 1}-0", vote("cats", "ann"))
    async with running_app(make_settings(redis_url, stream_names)) as (_, client):
        refused = [await client.post("/vote", json={"option": "dogs"}) for _ in range(3)]
        metrics = (await client.get("/metrics")).text
    assert [response.status_code for response in refused] == [503] * 3
    assert refused[0].json()["error"] == "stream_id_out_of_range"
    assert "retry-after" in refused[0].headers
    assert 'votes_rejected_total{reason="stream_id_out_of_range"} 3.0' in metrics
    assert any("bigint" in record.getMessage() for record in caplog.records)


async def test_the_status_of_an_entry_beyond_bigint_is_pending_then_dead_lettered(
    database_url: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
    db: asyncpg.Connection,
) -> None:
    entry_id = await xadd(redis_client, stream_names.stream, f"{BIGINT_MAX + 1}-7", vote("x", "y"))
    settings = make_settings(redis_url, stream_names, database_url=database_url)
    async with running_app(settings) as (_, client):
        pending = (await client.get(f"/votes/{entry_id}")).json()
        await Job(job_settings(database_url, redis_url, stream_names)).run()
        dead = (await client.get(f"/votes/{entry_id}")).json()
        beyond_u64 = await client.get(f"/votes/{2**64}-0")
    assert pending["state"] == "pending"
    assert dead["state"] == "dead_lettered"
    assert "bigint" in dead["reason"]
    assert beyond_u64.status_code == 404  # not a stream ID at all


async def test_the_documented_reset_brings_the_pipeline_back(
    database_url: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
    key_prefix: str,
    db: asyncpg.Connection,
) -> None:
    stream, group = stream_names.stream, stream_names.group
    ingest = make_settings(redis_url, stream_names, database_url=database_url)
    processor = job_settings(database_url, redis_url, stream_names)
    script = RESET_SCRIPT.read_text()
    moved = f"{key_prefix}votes:beyond-bigint"
    async with running_app(ingest) as (_, client):
        accepted = await client.post("/vote", json={"option": "cats", "voter_id": "ann"})
        await xadd(redis_client, stream, f"{BIGINT_MAX + 1}-0", vote("cats", "x"))
        refused = await client.post("/vote", json={"option": "dogs", "voter_id": "bob"})
        with pytest.raises(aioredis.ResponseError, match="drain"):
            await redis_client.eval(script, 2, stream, moved, group)  # ann is not recorded yet
        await Job(processor).run()
        assert await redis_client.eval(script, 2, stream, moved, group) == "OK"
        retried = await client.post("/vote", json={"option": "dogs", "voter_id": "bob"})
        await Job(processor).run()
        status = await client.get(retried.headers["location"])
    assert (accepted.status_code, refused.status_code, retried.status_code) == (202, 503, 202)
    assert status.json()["state"] == "recorded"
    state = await recorded(db)
    assert state.ballots.keys() == {"ann", "bob"}
    assert state.tally == {"cats": 1, "dogs": 1}
    assert await redis_client.xlen(moved) == 0  # what was there was dead-lettered first
    assert [info["name"] for info in await redis_client.xinfo_groups(stream)] == [group]
