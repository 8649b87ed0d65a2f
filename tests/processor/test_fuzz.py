"""Fuzz: arbitrary field maps XADDed raw (binary, huge, missing, repeated fields) next to valid
votes. Each entry ends recorded or dead-lettered with a reason; the Job drains and exits."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.job import Job
from processor.settings import ProcessorSettings
from processor.summary import Outcome
from tests.support.databases import empty_vote_tables
from tests.support.votestate import OPTIONS, stream_id
from votecontract.entry import MAX_ACCEPTED_MS
from votecontract.names import (
    FIELD_ACCEPTED_MS,
    FIELD_DEAD_ORIGINAL_ID,
    FIELD_DEAD_REASON,
    FIELD_OPTION,
    FIELD_VOTER_ID,
    StreamNames,
)

pytestmark = pytest.mark.security

Fields = list[tuple[bytes, bytes]]
_KNOWN = [name.encode() for name in (FIELD_OPTION, FIELD_VOTER_ID, FIELD_ACCEPTED_MS)]
_huge = st.integers(32 * 1024, 128 * 1024).map(lambda n: b"\xff" * n)
_value = st.one_of(
    st.binary(max_size=80),
    st.sampled_from([o.encode() for o in OPTIONS] + [b"", b"0", b"-1", b"1e3", b"\x00"]),
    st.text(max_size=20).map(str.encode),
    _huge,
)
_name = st.one_of(st.sampled_from(_KNOWN), st.binary(min_size=0, max_size=20))
_arbitrary: st.SearchStrategy[Fields] = st.lists(st.tuples(_name, _value), min_size=1, max_size=6)
_valid: st.SearchStrategy[Fields] = st.builds(
    lambda option, voter, ms: [(_KNOWN[0], option), (_KNOWN[1], voter), (_KNOWN[2], ms)],
    st.sampled_from([o.encode() for o in OPTIONS]),
    st.from_regex(rb"\A[A-Za-z0-9_-]{1,64}\Z"),
    st.integers(0, MAX_ACCEPTED_MS).map(lambda n: str(n).encode()),
)
_entries = st.lists(
    st.one_of(_valid.map(lambda f: (True, f)), _arbitrary.map(lambda f: (False, f))),
    min_size=1,
    max_size=8,
)


async def scenario(database_url: str, redis_url: str, entries: list[tuple[bool, Fields]]) -> None:
    names = StreamNames(stream=f"test:{uuid.uuid4().hex[:12]}:votes")
    raw = aioredis.Redis.from_url(redis_url)
    db = await asyncpg.connect(database_url)
    try:
        await empty_vote_tables(db)
        await raw.xgroup_create(names.stream, names.group, id="0", mkstream=True)
        ids = []
        for _, fields in entries:
            flat = [part for pair in fields for part in pair]
            ids.append(stream_id(await raw.execute_command("XADD", names.stream, "*", *flat)))
        settings = ProcessorSettings(
            redis_url=redis_url, database_url=database_url, names=names, consumer="fuzz",
            batch_size=3, writers=1, max_runtime_s=30, retry_backoff_ms=10,
        )  # fmt: skip
        job = Job(settings)
        await job.run()
        assert job.summary.outcome is Outcome.DRAINED
        await check_each_entry_ended(db, raw, names, ids, entries)
    finally:
        await raw.delete(names.stream, names.dead_letter)
        await raw.aclose()
        await db.close()


async def check_each_entry_ended(
    db: asyncpg.Connection,
    raw: aioredis.Redis,
    names: StreamNames,
    ids: list[tuple[int, int]],
    entries: list[tuple[bool, Fields]],
) -> None:
    recorded = {tuple(r) for r in await db.fetch("SELECT entry_ms, entry_seq FROM vote_events")}
    dead = {
        (r["entry_ms"], r["entry_seq"]): r["reason"]
        for r in await db.fetch("SELECT entry_ms, entry_seq, reason FROM dead_letters")
    }
    for entry_id, (_, fields) in zip(ids, entries, strict=True):
        assert (entry_id in recorded) != (entry_id in dead), (entry_id, fields)
        if entry_id in dead:
            assert dead[entry_id].strip(), fields
    for entry_id, (is_vote, fields) in zip(ids, entries, strict=True):
        if is_vote:
            assert entry_id in recorded, fields  # a valid vote behind poison is not held up
    mirrored = await raw.xrange(names.dead_letter)
    reasons = {
        stream_id(f[FIELD_DEAD_ORIGINAL_ID.encode()]): f[FIELD_DEAD_REASON.encode()]
        for _, f in mirrored
    }
    assert set(reasons) == set(dead)
    assert await raw.xlen(names.stream) == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=_entries)
def test_any_entry_ends_recorded_or_dead_lettered_and_never_blocks_the_rest(
    database_url: str, redis_url: str, entries: list[tuple[bool, Fields]]
) -> None:
    asyncio.run(scenario(database_url, redis_url, entries))
