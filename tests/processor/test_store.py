"""VoteStore: idempotent, last-cast-wins batches; tally equal to ballots under concurrency."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import asyncpg
import pytest

from processor.budget import RuntimeBudget
from processor.entries import ID_BEYOND_BIGINT, KEPT_BYTES, Poison, Vote
from processor.store import BatchCounts, VoteStore
from processor.voterows import VoteRows
from tests.support.votestate import OPTIONS, fold, recorded


def a_minute() -> RuntimeBudget:
    return RuntimeBudget.starting_now(60, grace_s=5)


@pytest.fixture
async def store(database_url: str, db: asyncpg.Connection) -> AsyncIterator[VoteStore]:
    store = await VoteStore.connect(database_url, OPTIONS, a_minute())
    try:
        yield store
    finally:
        await store.close()


# A row PostgreSQL refuses: \N is NULL in COPY text format, and voter_id is NOT NULL.
NULL_VOTER = VoteRows()
NULL_VOTER.add_chunk(b"4\t0\tcats\t\\N\t1970-01-01 00:00:00+00\n", 1, (4, 0), (4, 0))


def vote(ms: int, option: str, voter: str, seq: int = 0) -> Vote:
    return (ms, seq, option, voter, 1_700_000_000_000 + ms)


def as_fold_input(votes: list[Vote]) -> list[tuple[tuple[int, int], str, str]]:
    return [((ms, seq), option, voter) for ms, seq, option, voter, _ in votes]


async def test_a_redelivered_batch_changes_nothing(
    store: VoteStore, db: asyncpg.Connection
) -> None:
    batch = [vote(1, "cats", "ann"), vote(2, "dogs", "bob"), vote(3, "dogs", "ann")]
    assert await store.write_batch(VoteRows.of(batch), []) == BatchCounts(3, 1, 0, 0)
    before = await recorded(db)
    assert await store.write_batch(VoteRows.of(batch), []) == BatchCounts(0, 0, 3, 0)
    assert await recorded(db) == before == fold(as_fold_input(batch))


async def test_an_older_vote_arriving_late_is_kept_but_changes_nothing(
    store: VoteStore, db: asyncpg.Connection
) -> None:
    await store.write_batch(VoteRows.of([vote(5, "dogs", "ann")]), [])
    counts = await store.write_batch(VoteRows.of([vote(4, "cats", "ann")]), [])
    assert counts == BatchCounts(recorded=1, superseded=1, duplicates=0, dead_lettered=0)
    state = await recorded(db)
    assert state.ballots == {"ann": ("dogs", (5, 0))}
    assert state.tally == {"dogs": 1}
    assert (4, 0) in state.events


async def test_within_a_batch_only_the_highest_stream_id_counts(
    store: VoteStore, db: asyncpg.Connection
) -> None:
    await store.write_batch(VoteRows.of([vote(1, "cats", "ann")]), [])
    batch = [vote(2, "dogs", "ann"), vote(2, "cats", "ann", seq=1), vote(3, "dogs", "ann")]
    partly_replayed = [vote(1, "cats", "ann"), *batch]
    assert await store.write_batch(VoteRows.of(partly_replayed), []) == BatchCounts(3, 2, 1, 0)
    state = await recorded(db)
    assert state.ballots == {"ann": ("dogs", (3, 0))}
    assert state.tally == {"dogs": 1}


@pytest.mark.parametrize(
    "batches",
    [["5-0", "5-1"], ["5-1", "5-0"], ["5-0 5-1"], ["5-0 5-1", "5-1 5-0"]],
    ids=["seq 0 then 1", "seq 1 then 0", "one batch", "one batch, then redelivered"],
)
async def test_in_one_millisecond_the_higher_sequence_is_the_ballot_whatever_the_order(
    store: VoteStore, db: asyncpg.Connection, batches: list[str]
) -> None:
    """Two votes of one voter in the same millisecond: 5-1 was cast after 5-0."""
    cast = {"5-0": vote(5, "cats", "ann", seq=0), "5-1": vote(5, "dogs", "ann", seq=1)}
    for batch in batches:
        # VoteRows hold a batch in stream-ID order, as a Job reads it.
        await store.write_batch(VoteRows.of(sorted(cast[i] for i in batch.split())), [])
    state = await recorded(db)
    assert state.ballots == {"ann": ("dogs", (5, 1))}
    assert state.tally == {"dogs": 1}
    assert state == fold(as_fold_input(list(cast.values())))


class ProbesTooEarly(VoteStore):
    """Another Job commits `meanwhile` right after this store's probe for recorded IDs."""

    other: VoteStore
    meanwhile: VoteRows

    async def any_recorded_between(self, first: tuple[int, int], last: tuple[int, int]) -> bool:
        found = await super().any_recorded_between(first, last)
        await self.other.write_batch(self.meanwhile, [])
        return found


async def test_a_fresh_batch_leaves_out_rows_another_job_committed_inside_its_id_range(
    database_url: str, store: VoteStore, db: asyncpg.Connection
) -> None:
    """The fresh path reads its ballots back from vote_events: only its own rows count."""
    batch = [vote(1, "cats", "ann"), vote(3, "dogs", "bob")]
    meanwhile = [vote(2, "fish", "carol"), vote(2, "birds", "ann", seq=1)]
    racing = await ProbesTooEarly.connect(database_url, OPTIONS, a_minute())
    racing.other, racing.meanwhile = store, VoteRows.of(meanwhile)
    try:
        counts = await racing.write_batch(VoteRows.of(batch), [])
    finally:
        await racing.close()
    assert counts == BatchCounts(recorded=2, superseded=1, duplicates=0, dead_lettered=0)
    assert await recorded(db) == fold(as_fold_input(batch + meanwhile))


async def test_concurrent_jobs_on_the_same_voters_keep_tally_equal_to_ballots(
    database_url: str, db: asyncpg.Connection
) -> None:
    rng = random.Random(3)
    votes = [vote(ms, rng.choice(OPTIONS), f"v{rng.randrange(12)}") for ms in range(1, 601)]
    stores = [await VoteStore.connect(database_url, OPTIONS, a_minute()) for _ in range(3)]
    try:
        for start in range(0, len(votes), 60):
            chunk = votes[start : start + 60]
            # Each Job gets a random subset (overlapping: claims make Jobs see the same entry).
            subsets = [sorted(rng.sample(chunk, 40)) for _ in stores]
            await asyncio.gather(
                *(
                    s.write_batch(VoteRows.of(sub), [])
                    for s, sub in zip(stores, subsets, strict=True)
                )
            )
        await stores[0].write_batch(VoteRows.of(votes), [])
    finally:
        for s in stores:
            await s.close()
    assert await recorded(db) == fold(as_fold_input(votes))


async def test_the_fresh_batch_probe_sees_only_ids_inside_the_range(store: VoteStore) -> None:
    await store.write_batch(
        VoteRows.of([vote(5, "cats", "ann", seq=3), vote(9, "dogs", "bob")]), []
    )
    assert await store.any_recorded_between((5, 3), (5, 3))
    assert await store.any_recorded_between((1, 0), (20, 0))
    assert await store.any_recorded_between((5, 4), (9, 0))
    assert not await store.any_recorded_between((5, 4), (8, 99))
    assert not await store.any_recorded_between((1, 0), (5, 2))
    assert not await store.any_recorded_between((9, 1), (20, 0))


async def test_a_batch_around_recorded_ids_takes_the_idempotent_path(
    store: VoteStore, db: asyncpg.Connection
) -> None:
    recorded_first = [vote(5, "cats", "ann")]
    await store.write_batch(VoteRows.of(recorded_first), [])
    around = [vote(4, "dogs", "bob"), vote(5, "cats", "ann"), vote(6, "dogs", "ann")]
    assert await store.write_batch(VoteRows.of(around), []) == BatchCounts(2, 0, 1, 0)
    assert await recorded(db) == fold(as_fold_input(around))


async def test_rows_out_of_stream_order_are_still_recorded_exactly_once(
    store: VoteStore, db: asyncpg.Connection
) -> None:
    await store.write_batch(VoteRows.of([vote(5, "cats", "ann")]), [])
    # first/last no longer bound the IDs: the fresh probe misses ID 5, the plain INSERT hits
    # it and the batch is written again on the idempotent path. Order costs speed, not votes.
    shuffled = [vote(6, "dogs", "ann"), vote(5, "cats", "ann"), vote(4, "dogs", "bob")]
    assert await store.write_batch(VoteRows.of(shuffled), []) == BatchCounts(2, 0, 1, 0)
    assert await recorded(db) == fold(as_fold_input(sorted(shuffled)))


async def test_an_option_with_copy_special_characters_is_stored_verbatim(
    database_url: str, db: asyncpg.Connection
) -> None:
    odd = "tab\there\\back\nline\rend"
    store = await VoteStore.connect(database_url, (*OPTIONS, odd), a_minute())
    try:
        await store.write_batch(VoteRows.of([vote(1, odd, "ann")]), [])
    finally:
        await store.close()
    assert await db.fetchval("SELECT option FROM ballots") == odd


async def test_a_duplicate_committed_meanwhile_sends_a_fresh_batch_down_the_idempotent_path(
    database_url: str, store: VoteStore, db: asyncpg.Connection
) -> None:
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            await other.execute(
                "INSERT INTO vote_events (entry_ms, entry_seq, option, voter_id, accepted_at)"
                " VALUES (2, 0, 'dogs', 'bob', now())"
            )
            # The probe cannot see the uncommitted event: the batch takes the fresh path and
            # its plain INSERT waits on the other transaction's index entry.
            batch = [vote(1, "cats", "ann"), vote(2, "dogs", "bob")]
            writing = asyncio.create_task(store.write_batch(VoteRows.of(batch), []))
            async with asyncio.timeout(60):  # until the INSERT waits on the lock
                while not await db.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ):
                    assert not writing.done()
                    await asyncio.sleep(0.01)
        assert await writing == BatchCounts(recorded=1, superseded=0, duplicates=1, dead_lettered=0)
    finally:
        await other.close()
    state = await recorded(db)
    assert state.ballots == {"ann": ("cats", (1, 0))}
    assert state.tally == {"cats": 1}


async def test_the_staging_table_is_reused_and_empty_for_each_batch(
    store: VoteStore, db: asyncpg.Connection
) -> None:
    first = [vote(1, "cats", "ann"), vote(2, "dogs", "bob")]
    second = [vote(3, "dogs", "ann")]
    assert await store.write_batch(VoteRows.of(first), []) == BatchCounts(2, 0, 0, 0)
    # A batch that fails (NULL voter_id) takes its staged rows with it when it rolls back.
    with pytest.raises(asyncpg.NotNullViolationError):
        await store.write_batch(NULL_VOTER, [])
    assert await store.write_batch(VoteRows.of(second), []) == BatchCounts(1, 0, 0, 0)
    assert await recorded(db) == fold(as_fold_input(first + second))


async def test_dead_letters_are_stored_with_escaped_fields(
    store: VoteStore, db: asyncpg.Connection
) -> None:
    poison = Poison(b"9-2", [b"option", b"\xff", b"voter_id", b"a\x00b"], "option is not UTF-8")
    assert await store.write_batch(VoteRows(), [poison]) == BatchCounts(0, 0, 0, 1)
    assert await store.write_batch(VoteRows(), [poison]) == BatchCounts(0, 0, 0, 1)
    rows = await db.fetch("SELECT entry_ms, entry_seq, reason, fields FROM dead_letters")
    assert [tuple(row) for row in rows] == [
        (9, 2, "option is not UTF-8", json.dumps({"option": "\\xff", "voter_id": "a\\x00b"}))
    ]


async def test_dead_letters_keep_their_fields_exactly_as_redis_held_them(
    store: VoteStore, db: asyncpg.Connection
) -> None:
    fields = [b"option", b"\xff", b"option", b"cats", b"", b"\x00", b"voter_id", b"\\xff"]
    await store.write_batch(VoteRows(), [Poison(b"9-3", fields, "duplicate field 'option'")])
    assert await db.fetchval("SELECT entry_fields FROM dead_letters") == fields


async def test_any_entry_can_be_dead_lettered_whatever_its_id_and_size(
    store: VoteStore, db: asyncpg.Connection
) -> None:
    beyond = b"18446744073709551615-18446744073709551615"
    huge = [b"option", b"\x00" * (KEPT_BYTES + 1), b"voter_id", b"v"]
    await store.write_batch(VoteRows(), [Poison(beyond, huge, ID_BEYOND_BIGINT)])
    row = await db.fetchrow(
        "SELECT entry_ms::text || '-' || entry_seq::text AS id, reason, entry_fields,"
        " fields->>'voter_id' AS voter FROM dead_letters"
    )
    assert row is not None
    assert (row["id"].encode(), row["reason"], row["voter"]) == (beyond, ID_BEYOND_BIGINT, "v")
    assert row["entry_fields"] is None  # too large to keep exactly: never replayed


async def test_every_configured_option_has_a_tally_row(
    store: VoteStore, db: asyncpg.Connection
) -> None:
    rows = await db.fetch("SELECT option, votes FROM tally ORDER BY option")
    assert [tuple(row) for row in rows] == [("cats", 0), ("dogs", 0)]
