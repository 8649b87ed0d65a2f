"""Property: whatever the batch splits, redeliveries, crashes and interleaving of two
consumers, the outcome equals a sequential fold by stream ID, and lag is never NULL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.batches import Validation, build_batch
from processor.budget import RuntimeBudget
from processor.job import Job
from processor.settings import ProcessorSettings
from processor.store import VoteStore
from processor.stream import VoteStream
from processor.trim import StreamTrimmer
from tests.support.databases import empty_vote_tables
from tests.support.votestate import OPTIONS, add_votes, fold, group_lag, recorded
from votecontract.names import StreamNames


def a_minute() -> RuntimeBudget:
    return RuntimeBudget.starting_now(60, grace_s=5)


_votes = st.lists(
    st.tuples(st.sampled_from(OPTIONS), st.sampled_from("abcde")), min_size=1, max_size=40
)
# A step: which consumer, how it reads, how many entries, and how far it gets before "crashing".
_steps = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "both"]),
        st.sampled_from(["new", "claim"]),
        st.integers(1, 12),
        st.sampled_from(["acked", "committed", "lost"]),
    ),
    min_size=1,
    max_size=10,
)


class Consumer:
    def __init__(self, stream: VoteStream, store: VoteStore) -> None:
        self.stream, self.store = stream, store
        self.trimmer = StreamTrimmer(stream.redis, stream.names.stream)

    async def step(self, how: str, count: int, reach: str) -> None:
        if how == "new":
            entries = await self.stream.read_new(count)
        else:
            _, entries, _ = await self.stream.claim(b"0-0", 0, count)
        batch = build_batch(how, entries, Validation.of(OPTIONS, 100), {})
        if reach == "lost" or not entries:
            return
        await self.store.write_batch(batch.votes, batch.dead)
        if reach == "acked":
            await self.stream.settle(batch.ids, batch.dead)
            await self.trimmer.trim()


async def scenario(
    database_url: str,
    redis_url: str,
    votes: list[tuple[str, str]],
    steps: list[tuple[str, str, int, str]],
) -> None:
    names = StreamNames(stream=f"test:{uuid.uuid4().hex[:12]}:votes")
    plain = aioredis.Redis.from_url(redis_url, decode_responses=True)
    db = await asyncpg.connect(database_url)
    consumers: dict[str, Consumer] = {}
    try:
        await empty_vote_tables(db)
        added = await add_votes(plain, names.stream, votes)
        for name in ("a", "b"):
            stream = VoteStream.from_url(redis_url, names, name)
            consumers[name] = Consumer(
                stream, await VoteStore.connect(database_url, OPTIONS, a_minute())
            )
        await consumers["a"].stream.ensure_group()
        for who, how, count, reach in steps:
            chosen = ["a", "b"] if who == "both" else [who]
            await asyncio.gather(*(consumers[name].step(how, count, reach) for name in chosen))
            assert await group_lag(plain, names.stream, names.group) is not None
        # Claim-heavy schedules redeliver an entry many times; here that is no poison.
        settings = ProcessorSettings(
            redis_url=redis_url, database_url=database_url, names=names, consumer="final",
            batch_size=5, claim_min_idle_ms=0, max_runtime_s=30, max_deliveries=1000,
        )  # fmt: skip
        await Job(settings).run()
        assert await group_lag(plain, names.stream, names.group) == 0
        assert await recorded(db) == fold(added)
        assert await plain.xlen(names.stream) == 0
    finally:
        for consumer in consumers.values():
            await consumer.stream.close()
            await consumer.store.close()
        await plain.delete(names.stream, names.dead_letter)
        await plain.aclose()
        await db.close()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(votes=_votes, steps=_steps)
def test_any_schedule_ends_equal_to_a_sequential_fold(
    database_url: str,
    redis_url: str,
    votes: list[tuple[str, str]],
    steps: list[tuple[str, str, int, str]],
) -> None:
    asyncio.run(scenario(database_url, redis_url, votes, steps))
