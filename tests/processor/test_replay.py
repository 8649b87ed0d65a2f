"""Replaying dead letters: valid votes are recorded once, by their original stream ID."""

from __future__ import annotations

import asyncio
import json
import sys

import asyncpg
import redis.asyncio as aioredis

from processor.budget import RuntimeBudget
from processor.entries import ID_BEYOND_BIGINT, Poison
from processor.job import Job
from processor.replay import NOT_KEPT_EXACTLY, replay_dead_letters
from processor.settings import ProcessorSettings
from processor.store import VoteStore
from processor.voterows import VoteRows
from tests.support.jobprocess import job_env
from tests.support.votestate import OPTIONS, add_votes, fold, recorded


def a_minute() -> RuntimeBudget:
    return RuntimeBudget.starting_now(60, grace_s=5)


def vote_fields(option: bytes, voter: bytes) -> list[bytes]:
    return [b"option", option, b"voter_id", voter, b"accepted_ms", b"1700000000000"]


async def run_processor(*args: str, env: dict[str, str]) -> tuple[int, bytes]:
    """`python -m processor ARGS`: exit code and standard error."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "processor", *args, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, stderr


async def dead_letter(database_url: str, *poisons: Poison) -> None:
    store = await VoteStore.connect(database_url, OPTIONS, a_minute())
    try:
        await store.write_batch(VoteRows(), poisons)
    finally:
        await store.close()


async def test_a_vote_for_an_option_added_later_counts_after_replay(
    settings: ProcessorSettings, redis_client: aioredis.Redis, db: asyncpg.Connection
) -> None:
    # Ingest knew "birds" before the processor did: the Job dead-letters the vote.
    votes = await add_votes(
        redis_client, settings.names.stream, [("birds", "ann"), ("dogs", "bob")]
    )
    await Job(settings).run()
    assert await recorded(db) == fold(votes[1:])

    report = await replay_dead_letters(settings.database_url, (*OPTIONS, "birds"))
    assert (report.valid, report.recorded, report.still_invalid.total()) == (1, 1, 0)
    assert await recorded(db) == fold(votes)
    again = await replay_dead_letters(settings.database_url, (*OPTIONS, "birds"))
    assert (again.valid, again.recorded) == (0, 0)
    assert await recorded(db) == fold(votes)


async def test_a_replayed_vote_is_ordered_by_when_it_was_cast(
    database_url: str, db: asyncpg.Connection
) -> None:
    # ann's dead-lettered vote (ID 5) is older than her recorded one (ID 9): kept as an event,
    # but her ballot and the tally stay with the later vote.
    store = await VoteStore.connect(database_url, OPTIONS, a_minute())
    try:
        await store.write_batch(VoteRows.of([(9, 0, "dogs", "ann", 0)]), [])
    finally:
        await store.close()
    await dead_letter(database_url, Poison(b"5-0", vote_fields(b"cats", b"ann"), "delivered 6"))
    report = await replay_dead_letters(database_url, OPTIONS)
    assert report.recorded == 1
    state = await recorded(db)
    assert state.events == {(5, 0): ("cats", "ann"), (9, 0): ("dogs", "ann")}
    assert (state.ballots, state.tally) == ({"ann": ("dogs", (9, 0))}, {"dogs": 1})


async def test_only_what_validates_now_is_replayed_and_a_dry_run_writes_nothing(
    database_url: str, db: asyncpg.Connection
) -> None:
    await dead_letter(
        database_url,
        Poison(b"1-0", vote_fields(b"birds", b"ann"), "unknown option 'birds'"),
        Poison(b"2-0", vote_fields(b"cats", b"bob smith"), "voter_id must be ..."),
        Poison(b"3-0", [b"option", b"cats"], "missing field voter_id, accepted_ms"),
    )
    dry = await replay_dead_letters(database_url, (*OPTIONS, "birds"), dry_run=True)
    assert (dry.valid, dry.recorded, dry.still_invalid.total()) == (1, 0, 2)
    assert await db.fetchval("SELECT count(*) FROM vote_events") == 0

    stale = await replay_dead_letters(database_url, OPTIONS)
    assert (stale.valid, stale.recorded) == (0, 0)
    assert "unknown option 'birds'; expected one of cats, dogs" in stale.still_invalid

    report = await replay_dead_letters(database_url, (*OPTIONS, "birds"))
    assert (report.valid, report.recorded) == (1, 1)
    assert sorted(report.still_invalid) == [
        "missing field voter_id, accepted_ms",
        "voter_id must be 1-64 characters of A-Z a-z 0-9 _ -, got 'bob smith'",
    ]
    assert (await recorded(db)).ballots == {"ann": ("birds", (1, 0))}
    assert await db.fetchval("SELECT count(*) FROM dead_letters") == 3  # kept as history


async def test_the_command_line_replays_and_logs_what_it_did(
    settings: ProcessorSettings, db: asyncpg.Connection
) -> None:
    await dead_letter(settings.database_url, Poison(b"7-0", vote_fields(b"dogs", b"cy"), "x"))
    env = job_env(settings)
    code, stderr = await run_processor("replay-dead-letters", env=env)
    assert code == 0, stderr.decode()
    lines = [json.loads(line) for line in stderr.decode().splitlines()]
    summary = next(line for line in lines if line["msg"] == "dead letters replayed")
    assert (summary["valid_votes"], summary["recorded"], summary["still_invalid"]) == (1, 1, 0)
    assert (await recorded(db)).tally == {"dogs": 1}
    code, stderr = await run_processor("replay-dead-letters", "--all", env=env)
    assert code == 2
    assert b"usage: python -m processor" in stderr


async def test_an_entry_refused_for_a_repeated_field_stays_refused_on_replay(
    settings: ProcessorSettings, redis_client: aioredis.Redis, db: asyncpg.Connection
) -> None:
    # Kept as a dict, the entry's fields lose the first `option`: what is left is a valid vote.
    fields = [b"option", b"birds", *vote_fields(b"cats", b"ann")]
    await redis_client.execute_command("XADD", settings.names.stream, "*", *fields)
    await Job(settings).run()
    reason = "duplicate field 'option'"
    assert await db.fetchval("SELECT reason FROM dead_letters") == reason
    report = await replay_dead_letters(settings.database_url, OPTIONS)
    assert (report.valid, report.recorded, dict(report.still_invalid)) == (0, 0, {reason: 1})
    assert await db.fetchval("SELECT count(*) FROM vote_events") == 0


async def test_a_dead_letter_without_its_exact_fields_is_never_replayed(
    database_url: str, db: asyncpg.Connection
) -> None:
    # A row written before migration 0003: its readable fields look like a valid vote.
    readable = {"option": "cats", "voter_id": "ann", "accepted_ms": "1700000000000"}
    await db.execute(
        "INSERT INTO dead_letters (entry_ms, entry_seq, reason, fields) VALUES (4, 0, $1, $2)",
        "delivered 6 times, more than MAX_DELIVERIES=5",
        json.dumps(readable),
    )
    report = await replay_dead_letters(database_url, OPTIONS)
    assert (report.valid, report.recorded) == (0, 0)
    assert dict(report.still_invalid) == {NOT_KEPT_EXACTLY: 1}
    assert await db.fetchval("SELECT count(*) FROM vote_events") == 0


async def test_a_dead_letter_beyond_bigint_stays_a_dead_letter(
    database_url: str, db: asyncpg.Connection
) -> None:
    beyond = Poison(b"9223372036854775808-0", vote_fields(b"cats", b"ann"), ID_BEYOND_BIGINT)
    await dead_letter(database_url, beyond, Poison(b"2-0", vote_fields(b"cats", b"bo"), "x"))
    report = await replay_dead_letters(database_url, OPTIONS)
    assert (report.valid, report.recorded, dict(report.still_invalid)) == (
        1, 1, {ID_BEYOND_BIGINT: 1},
    )  # fmt: skip
    assert (await recorded(db)).ballots == {"bo": ("cats", (2, 0))}
