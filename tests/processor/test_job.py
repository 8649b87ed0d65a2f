"""The Job end to end, in-process, against the real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from processor.consumers import ConsumerJanitor
from processor.job import Job
from processor.settings import ProcessorSettings
from processor.stream import RawEntry
from processor.summary import Outcome
from tests.support.clock import ManualClock
from tests.support.votestate import (
    add_votes,
    fold,
    group_lag,
    random_votes,
    recorded,
    votes_with_one_worn_out,
)
from votecontract.names import FIELD_DEAD_ORIGINAL_ID, FIELD_DEAD_REASON


async def run(settings: ProcessorSettings, **changes: object) -> Job:
    job = Job(dataclasses.replace(settings, **changes))  # type: ignore[arg-type]
    await job.run()
    return job


async def pending_of(redis: aioredis.Redis, stream: str, group: str) -> int:
    return int((await redis.xpending(stream, group))["pending"])


async def test_a_job_drains_the_stream_records_each_vote_once_and_trims(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    stream, group = settings.names.stream, settings.names.group
    votes = await add_votes(redis_client, stream, random_votes(100, 15, random.Random(1)))
    ready = tmp_path / "ready"
    job = await run(settings, ready_file=str(ready))
    assert job.summary.outcome is Outcome.DRAINED
    assert (job.summary.entries, job.summary.recorded) == (100, 100)
    assert await recorded(db) == fold(votes)
    assert ready.exists()
    assert await redis_client.xlen(stream) == 0
    assert await group_lag(redis_client, stream, group) == 0
    assert await redis_client.xinfo_consumers(stream, group) == []


async def test_poison_entries_are_dead_lettered_with_their_reason(
    settings: ProcessorSettings, redis_client: aioredis.Redis, db: asyncpg.Connection
) -> None:
    stream = settings.names.stream
    good = await add_votes(redis_client, stream, [("cats", "ann")])
    bad = {
        "unknown option 'fish'": ["option", "fish", "voter_id", "bob", "accepted_ms", "1"],
        "missing field accepted_ms": ["option", "cats", "voter_id", "bob"],
        "duplicate field 'voter_id'": [
            "option",
            "cats",
            "voter_id",
            "b",
            "voter_id",
            "c",
            "accepted_ms",
            "1",
        ],
        "voter_id must be": ["option", "dogs", "voter_id", "no spaces", "accepted_ms", "1"],
    }
    ids = {}
    for reason, fields in bad.items():
        ids[reason] = await redis_client.execute_command("XADD", stream, "*", *fields)
    await run(settings)
    assert await recorded(db) == fold(good)
    dead = await redis_client.xrange(settings.names.dead_letter)
    assert len(dead) == len(bad)
    for (_, fields), (reason, original_id) in zip(dead, ids.items(), strict=True):
        assert fields[FIELD_DEAD_ORIGINAL_ID] == original_id
        assert fields[FIELD_DEAD_REASON].startswith(reason)
    rows = await db.fetch("SELECT reason FROM dead_letters ORDER BY entry_ms, entry_seq")
    assert [row["reason"] for row in rows] == [fields[FIELD_DEAD_REASON] for _, fields in dead]
    assert await redis_client.xlen(stream) == 0


@pytest.mark.parametrize("batch_size", [1, 2, 7])
async def test_a_voter_id_of_64_characters_is_recorded_and_one_of_65_dead_lettered(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    batch_size: int,
) -> None:
    longest, too_long = "L" * 64, "T" * 65
    # In ingest's layout, so that each batch tries the column-wise path first.
    votes = [("cats", longest), ("dogs", too_long), ("cats", "ann"), ("dogs", too_long)]
    added = await add_votes(redis_client, settings.names.stream, votes)
    job = await run(settings, batch_size=batch_size)
    assert job.summary.outcome is Outcome.DRAINED
    assert await recorded(db) == fold(vote for vote in added if vote[2] != too_long)
    rows = await db.fetch("SELECT reason, fields FROM dead_letters ORDER BY entry_ms, entry_seq")
    assert len(rows) == 2
    for row in rows:
        assert row["reason"].startswith("voter_id must be 1-64 characters"), row["reason"]
        assert json.loads(row["fields"])["voter_id"] == too_long


async def test_delivery_counts_condemn_no_valid_vote(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream, group = settings.names.stream, settings.names.group
    votes, worn = await votes_with_one_worn_out(redis_client, stream, group)
    poison = await redis_client.xadd(stream, {"option": "fish", "voter_id": "cy"})
    await redis_client.xreadgroup(group, "crashed", {stream: ">"})
    await redis_client.execute_command(
        "XCLAIM", stream, group, "crashed", 0, poison, "RETRYCOUNT", 9
    )
    job = await run(settings, max_deliveries=3, claim_min_idle_ms=0)
    assert job.summary.over_delivery_limit == 2
    assert await recorded(db) == fold(votes)  # the worn-out vote counts
    dead = await redis_client.xrange(settings.names.dead_letter)
    assert [fields[FIELD_DEAD_ORIGINAL_ID] for _, fields in dead] == [poison]
    assert dead[0][1][FIELD_DEAD_REASON] == "missing field accepted_ms"  # why, not how often
    assert await pending_of(redis_client, stream, group) == 0
    assert any("MAX_DELIVERIES" in record.getMessage() for record in caplog.records)
    assert worn not in {fields[FIELD_DEAD_ORIGINAL_ID] for _, fields in dead}


@pytest.mark.parametrize("batch_size", [1, 7])
@pytest.mark.parametrize("holder", ["crashed", "job-1"])  # claimed, or the Job's own pending
async def test_the_delivery_limit_is_exact_at_max_deliveries(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    holder: str,
    batch_size: int,
) -> None:
    """A read counts as a delivery (XAUTOCLAIM and re-reading one's own pending entries both
    add one): an entry on its MAX_DELIVERIES-th delivery is not over the limit, one more is.
    Being over it condemns no valid vote (issue 13): it is counted and logged, and recorded."""
    stream, group, limit = settings.names.stream, settings.names.group, 3
    votes = await add_votes(
        redis_client, stream, [("cats", "ann"), ("dogs", "bob"), ("dogs", "cy")]
    )
    ids = ["{}-{}".format(*entry_id) for entry_id, _, _ in votes]
    await redis_client.xgroup_create(stream, group, "0")
    await redis_client.xreadgroup(group, holder, {stream: ">"})
    # Delivered so far: ann limit-1 times, bob limit times, cy once; the Job's read adds one.
    for entry_id, delivered in ((ids[0], limit - 1), (ids[1], limit)):
        await redis_client.execute_command(
            "XCLAIM", stream, group, holder, 0, entry_id, "RETRYCOUNT", delivered
        )
    # Claiming with no minimum idle time would also take the Job's own entries in flight.
    idle = 0 if holder == "crashed" else 60_000
    job = await run(settings, max_deliveries=limit, claim_min_idle_ms=idle, batch_size=batch_size)
    assert job.summary.outcome is Outcome.DRAINED
    assert job.summary.over_delivery_limit == 1  # bob's limit + 1; ann's limit is not over
    assert await recorded(db) == fold(votes)
    assert await db.fetch("SELECT 1 FROM dead_letters") == []
    assert await pending_of(redis_client, stream, group) == 0


@pytest.mark.parametrize("first_recorded", ["5-0", "5-1"])
async def test_two_votes_of_a_voter_in_one_millisecond_end_with_the_later_one(
    settings: ProcessorSettings,
    redis_client: aioredis.Redis,
    db: asyncpg.Connection,
    first_recorded: str,
) -> None:
    stream, group = settings.names.stream, settings.names.group
    for entry_id, option in (("5-0", "cats"), ("5-1", "dogs")):
        fields = {"option": option, "voter_id": "ann", "accepted_ms": "5"}
        await redis_client.xadd(stream, fields, id=entry_id)  # type: ignore[arg-type]
    await redis_client.xgroup_create(stream, group, "0")
    if first_recorded == "5-1":
        # Another consumer took 5-0 and stalled; it is claimed (and recorded) last.
        await redis_client.xreadgroup(group, "stalled", {stream: ">"}, count=1)
    await run(settings, batch_size=1, claim_min_idle_ms=60_000)
    expected_first = {(5, 1)} if first_recorded == "5-1" else {(5, 0), (5, 1)}
    assert set((await recorded(db)).events) == expected_first
    await run(settings, batch_size=1, claim_min_idle_ms=0)
    state = await recorded(db)
    assert state.ballots == {"ann": ("dogs", (5, 1))}
    assert state.tally == {"dogs": 1}
    assert set(state.events) == {(5, 0), (5, 1)}
    assert await pending_of(redis_client, stream, group) == 0


async def test_a_retried_pod_first_finishes_its_own_pending_entries(
    settings: ProcessorSettings, redis_client: aioredis.Redis, db: asyncpg.Connection
) -> None:
    stream, group = settings.names.stream, settings.names.group
    votes = await add_votes(redis_client, stream, random_votes(30, 5, random.Random(2)))
    await redis_client.xgroup_create(stream, group, "0")
    await redis_client.xreadgroup(group, settings.consumer, {stream: ">"}, count=20)
    job = await run(settings)
    assert job.summary.entries == 30
    assert await recorded(db) == fold(votes)
    assert await pending_of(redis_client, stream, group) == 0


async def test_trimming_keeps_every_entry_not_yet_acked(
    settings: ProcessorSettings, redis_client: aioredis.Redis, db: asyncpg.Connection
) -> None:
    stream, group = settings.names.stream, settings.names.group
    first = await add_votes(redis_client, stream, random_votes(10, 4, random.Random(3)))
    await run(settings)
    assert await redis_client.xlen(stream) == 0
    held = await add_votes(redis_client, stream, random_votes(3, 4, random.Random(4)))
    await redis_client.xreadgroup(group, "slow", {stream: ">"})
    rest = await add_votes(redis_client, stream, random_votes(10, 4, random.Random(5)))
    await run(settings)
    remaining = [entry_id for entry_id, _ in await redis_client.xrange(stream)]
    expected = [f"{ms}-{seq}" for (ms, seq), _, _ in held + rest]
    assert remaining == expected  # from the oldest pending entry on, nothing removed
    assert await group_lag(redis_client, stream, group) == 0
    await run(settings, claim_min_idle_ms=0)
    assert await redis_client.xlen(stream) == 0
    assert await recorded(db) == fold(first + held + rest)


async def test_cleanup_deletes_only_consumers_without_pending_entries(
    settings: ProcessorSettings, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream, group = settings.names.stream, settings.names.group
    await add_votes(redis_client, stream, [("cats", "ann")])
    await redis_client.xgroup_create(stream, group, "0")
    await redis_client.xreadgroup(group, "stale-holding", {stream: ">"})
    await redis_client.xgroup_createconsumer(stream, group, "stale-empty")

    class JanitorAfterAWhile(ConsumerJanitor):
        """Cleans once stale-empty is idle past the limit, just after fresh-empty appeared:
        Redis's idle times are wall-clock, so the test waits for the state, not a time."""

        async def clean(self, own: str, stale_idle_ms: int) -> list[str]:
            await wait_for_idle(redis_client, stream, group, "stale-empty", stale_idle_ms)
            await redis_client.xgroup_createconsumer(stream, group, "fresh-empty")
            return await super().clean(own, stale_idle_ms)

    monkeypatch.setattr("processor.job.ConsumerJanitor", JanitorAfterAWhile)
    await run(settings, stale_consumer_idle_ms=1000)
    names = {consumer["name"] for consumer in await redis_client.xinfo_consumers(stream, group)}
    assert names == {"stale-holding", "fresh-empty"}


async def wait_for_idle(
    redis: aioredis.Redis, stream: str, group: str, consumer: str, more_than_ms: int
) -> None:
    for _ in range(600):
        idle = {c["name"]: c["idle"] for c in await redis.xinfo_consumers(stream, group)}
        if idle[consumer] > more_than_ms:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{consumer} never became idle for {more_than_ms} ms")


async def test_a_lost_group_is_recreated_at_zero_and_replays_change_nothing(
    settings: ProcessorSettings, redis_client: aioredis.Redis, db: asyncpg.Connection
) -> None:
    stream, group = settings.names.stream, settings.names.group
    votes = await add_votes(redis_client, stream, random_votes(20, 5, random.Random(6)))
    await redis_client.xgroup_create(stream, group, "0")
    await redis_client.xreadgroup(group, "gone", {stream: ">"}, count=10)
    await run(settings)  # records the 10 others; the held ones keep all 20 in the stream
    assert await redis_client.xlen(stream) == 20
    await redis_client.xgroup_destroy(stream, group)
    job = await run(settings)
    assert job.summary.outcome is Outcome.DRAINED
    assert (job.summary.recorded, job.summary.duplicates) == (10, 10)
    assert await recorded(db) == fold(votes)
    assert await group_lag(redis_client, stream, group) == 0
    assert await redis_client.xlen(stream) == 0


async def test_a_job_past_its_runtime_reads_nothing_more(
    settings: ProcessorSettings, redis_client: aioredis.Redis
) -> None:
    stream, group = settings.names.stream, settings.names.group
    await add_votes(redis_client, stream, [("cats", "ann")])
    clock = ManualClock()
    job = Job(settings, clock=clock)
    clock.advance(settings.max_runtime_s)
    summary = await job.run()
    assert summary.outcome is Outcome.DEADLINE
    assert summary.entries == 0
    assert await group_lag(redis_client, stream, group) == 1


async def test_a_job_whose_budget_runs_out_finishes_what_it_read_and_reads_no_more(
    settings: ProcessorSettings, redis_client: aioredis.Redis, db: asyncpg.Connection
) -> None:
    stream, group = settings.names.stream, settings.names.group
    votes = await add_votes(redis_client, stream, random_votes(30, 8, random.Random(12)))
    clock = ManualClock()
    job = Job(dataclasses.replace(settings, batch_size=5), clock=clock)
    read_new, reads = job.stream.read_new, []

    async def second_read_at_the_deadline(count: int) -> list[RawEntry]:
        entries = await read_new(count)
        reads.append(len(entries))
        if len(reads) == 2:
            clock.advance(settings.max_runtime_s)
        return entries

    job.stream.read_new = second_read_at_the_deadline  # type: ignore[method-assign]
    summary = await job.run()
    assert summary.outcome is Outcome.DEADLINE
    assert summary.entries == 10  # the two batches read before the deadline, no more
    assert await recorded(db) == fold(votes[:10])
    assert await pending_of(redis_client, stream, group) == 0
    assert await group_lag(redis_client, stream, group) == 20


async def test_pending_entries_that_no_longer_exist_are_accounted_for(
    settings: ProcessorSettings, redis_client: aioredis.Redis, db: asyncpg.Connection
) -> None:
    stream, group = settings.names.stream, settings.names.group
    votes = await add_votes(redis_client, stream, random_votes(6, 3, random.Random(7)))
    await redis_client.xgroup_create(stream, group, "0")
    await redis_client.xreadgroup(group, settings.consumer, {stream: ">"}, count=2)
    await redis_client.xreadgroup(group, "other", {stream: ">"}, count=2)
    ids = [f"{ms}-{seq}" for (ms, seq), _, _ in votes]
    await redis_client.xdel(stream, ids[0], ids[2])  # removed behind the group's back
    job = await run(settings, claim_min_idle_ms=0)
    assert job.summary.vanished == 1  # own pending, acked; the claimed one Redis dropped itself
    assert await recorded(db) == fold([votes[1], *votes[3:]])
    assert await pending_of(redis_client, stream, group) == 0


async def test_a_job_with_nothing_to_read_still_trims_what_every_group_acked(
    settings: ProcessorSettings, redis_client: aioredis.Redis, db: asyncpg.Connection
) -> None:
    stream, group = settings.names.stream, settings.names.group
    votes = await add_votes(redis_client, stream, random_votes(12, 4, random.Random(8)))
    await redis_client.xgroup_create(stream, group, "0")
    await redis_client.xgroup_create(stream, "audit", "0")
    await run(settings)
    assert await redis_client.xlen(stream) == 12  # the audit group has not read them yet
    delivered = await redis_client.xreadgroup("audit", "auditor", {stream: ">"})
    await redis_client.xack(stream, "audit", *[entry_id for entry_id, _ in delivered[0][1]])
    job = await run(settings)
    assert (job.summary.entries, job.summary.trimmed) == (0, 12)
    assert await redis_client.xlen(stream) == 0
    assert await recorded(db) == fold(votes)
