"""One drain-and-exit run: read batches, record them in PostgreSQL, ack, trim, exit.

Three stages overlap: while one batch is written to PostgreSQL, the next is read from Redis
and validated, and the previous one is acked and the stream trimmed. A batch is acked only
after its transaction committed, so a Job killed at any instant leaves its entries pending;
the writes are idempotent per stream ID, so their redelivery changes nothing.

The run is bounded by its RuntimeBudget: whatever it still waits on at `work_until`
(MAX_RUNTIME_S + SHUTDOWN_GRACE_S, less the time kept for closing; sooner after SIGTERM) is
cancelled, and the Job exits having given up, its unacked entries pending.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Sequence
from functools import partial

import asyncpg
import redis.exceptions

from processor.batches import Batch
from processor.budget import RuntimeBudget
from processor.consumers import ConsumerJanitor
from processor.handoff import Handoff, run_stage
from processor.isolation import write_isolating
from processor.reader import BatchReader
from processor.redisclient import job_client
from processor.retry import POSTGRES_TRANSIENT, REDIS_TRANSIENT, Backoff, Clock, GiveUpError
from processor.settings import ProcessorSettings
from processor.store import BatchCounts, VoteStore
from processor.stream import VoteStream
from processor.summary import JobSummary, Outcome
from processor.trim import StreamTrimmer

logger = logging.getLogger(__name__)

Committed = tuple[Batch, BatchCounts, float]
# The consumer cleanup at exit gets what is left of the budget, and at least this: one Lua
# script on a loopback connection.
_MIN_CLEANUP_S = 0.05
# REDIS_TRANSIENT includes OSError, hence TimeoutError (the cleanup's bound).
_CLEANUP_ERRORS: tuple[type[BaseException], ...] = (
    *REDIS_TRANSIENT,
    redis.exceptions.ResponseError,
)


class Job:
    """A Job's run; `stop` (set on SIGTERM) ends it after the batches already read.

    `clock` measures the runtime budget (tests pass one they control)."""

    def __init__(
        self,
        settings: ProcessorSettings,
        stop: asyncio.Event | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.stop = stop or asyncio.Event()
        self.clock = clock
        self.started = clock()
        # The whole run's bounds (work_until, finish_by) are on time.monotonic(); when reading
        # stops is on `clock`, which tests control.
        self.budget = RuntimeBudget.starting_now(settings.max_runtime_s, settings.shutdown_grace_s)
        self.backoff = Backoff(
            settings.retry_backoff_ms / 1000,
            settings.retry_backoff_max_ms / 1000,
            self.started + settings.max_runtime_s,
            clock,
        )
        client = job_client(settings.redis_url, settings.topology)
        self.stream = VoteStream(client, settings.names, settings.consumer)
        self.trimmer = StreamTrimmer(self.stream.redis, settings.names.stream)
        self.reader = BatchReader(settings, self.stream, self.backoff, self.stop)
        self.stores: list[VoteStore | None] = [None] * settings.writers
        self.writers_running = settings.writers
        self.summary = JobSummary(settings.consumer)
        self.commits = 0

    async def run(self) -> JobSummary:
        """Drain the stream; the summary says why the run ended."""
        try:
            reason = await self._bounded_run()
        finally:
            await self._close()
        if self.summary.outcome is Outcome.GAVE_UP:
            logger.error("giving up; unacked entries stay pending", extra={"error": reason})
        self.summary.log(self.clock() - self.started)
        return self.summary

    async def _bounded_run(self) -> str:
        """The run within the budget; why it gave up, if it did."""
        reason = ""
        try:
            async with asyncio.timeout_at(_loop_time(self.budget.work_until)) as bound:
                tighten = asyncio.create_task(self._tighten_on_stop(bound))
                try:
                    await self.reader.redis("ensure group", self.stream.ensure_group)
                    await self._pipeline()
                    while self._drained_with_unseen_deliveries():
                        # Every batch read is settled now, so what is still pending on this
                        # consumer is what a lost reply delivered: the next pass reads it first.
                        await self._pipeline()
                    self.summary.outcome = self.reader.stop_reason
                    await self._trim_once_more()
                except* GiveUpError as group:
                    self.summary.outcome = Outcome.GAVE_UP
                    reason = str(group.exceptions[0])
                finally:
                    tighten.cancel()
        except TimeoutError:
            if not bound.expired():
                raise
            self.summary.outcome = Outcome.GAVE_UP
            reason = "still waiting at the end of MAX_RUNTIME_S + SHUTDOWN_GRACE_S"
        return reason

    def _drained_with_unseen_deliveries(self) -> bool:
        drained = self.reader.stop_reason is Outcome.DRAINED
        return self.reader.take_unseen_deliveries() and drained

    async def _tighten_on_stop(self, bound: asyncio.Timeout) -> None:
        """SIGTERM: the batches in hand get SHUTDOWN_GRACE_S from now, no more."""
        await self.stop.wait()
        self.budget.stop_soon()
        bound.reschedule(_loop_time(self.budget.work_until))

    async def _pipeline(self) -> None:
        failed = asyncio.Event()  # any stage failed: the others stop (see processor.handoff)
        self.writers_running = self.settings.writers
        read: Handoff[Batch | None] = Handoff(self.settings.writers, failed)
        committed: Handoff[Committed | None] = Handoff(self.settings.writers, failed)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(run_stage(self.reader.read_all(read), failed))
            for slot in range(self.settings.writers):
                tasks.create_task(run_stage(self._write_all(slot, read, committed), failed))
            tasks.create_task(run_stage(self._settle_all(committed), failed))

    async def _write_all(
        self,
        slot: int,
        read: Handoff[Batch | None],
        committed: Handoff[Committed | None],
    ) -> None:
        """One of the writers: batches commit independently (and are acked each on its own)."""
        while (batch := await read.get()) is not None:
            started = time.monotonic()
            counts = BatchCounts(0, 0, 0, 0)
            if batch.votes or batch.dead:
                write = partial(self._write, slot, batch)
                counts = await self.backoff.run("postgres", write, POSTGRES_TRANSIENT)
                self._after_commit()
            await committed.put((batch, counts, started))
        await read.put(None)  # the end marker, for the other writers
        self.writers_running -= 1
        if self.writers_running == 0:
            await committed.put(None)

    async def _write(self, slot: int, batch: Batch) -> BatchCounts:
        store = self.stores[slot]
        if store is None:
            settings = self.settings
            store = await VoteStore.connect(settings.database_url, settings.options, self.budget)
            self.stores[slot] = store
        try:
            try:
                return await store.write_batch(batch.votes, batch.dead)
            except asyncpg.DataError:
                return await self._write_isolating(store, batch)
        except POSTGRES_TRANSIENT:
            store.abort()
            self.stores[slot] = None
            raise

    async def _write_isolating(self, store: VoteStore, batch: Batch) -> BatchCounts:
        """PostgreSQL refused a value of the batch: find the votes and dead-letter them."""
        counts, batch.votes, refused = await write_isolating(
            store, batch.votes, batch.dead, self._fields_of
        )
        batch.dead.extend(refused)
        return counts

    async def _fields_of(self, entry_id: bytes) -> Sequence[bytes] | None:
        return await self.reader.redis(
            "read refused entry", partial(self.stream.fields_of, entry_id)
        )

    def _after_commit(self) -> None:
        self.commits += 1
        if self.commits == self.settings.test_stop_after_commit:
            # Test-only (PROCESSOR_TEST_STOP_AFTER_COMMIT): freeze between COMMIT and XACK so a
            # crash test can SIGKILL the Job at exactly that instant.
            os.kill(os.getpid(), signal.SIGSTOP)

    async def _settle_all(self, committed: Handoff[Committed | None]) -> None:
        while (item := await committed.get()) is not None:
            batch, counts, started = item
            settle = partial(self.stream.settle, batch.ids, batch.dead)
            refused = await self.reader.redis("ack", settle)
            trimmed = await self.reader.redis("trim", self.trimmer.trim)
            self.summary.add(batch, counts, trimmed, time.monotonic() - started, refused)

    async def _trim_once_more(self) -> None:
        """Trim at the end of every run, even one that read nothing: entries another group
        acked after the last batch was settled are removed now, not when a Job next has work."""
        self.summary.trimmed += await self.reader.redis("trim", self.trimmer.trim)

    async def _close(self) -> None:
        for store in self.stores:
            if store is not None:
                await store.close()
        janitor = ConsumerJanitor(self.stream.redis, self.settings.names)
        try:
            async with asyncio.timeout(max(_MIN_CLEANUP_S, self._left_to_finish_s())):
                removed = await janitor.clean(
                    self.settings.consumer, self.settings.stale_consumer_idle_ms
                )
            if removed:
                logger.info("consumers deleted", extra={"consumers": removed})
        except _CLEANUP_ERRORS as exc:
            logger.warning("consumer cleanup skipped", extra={"error": repr(exc)})
        await self.stream.close()

    def _left_to_finish_s(self) -> float:
        return self.budget.finish_by - time.monotonic()


def _loop_time(monotonic: float) -> float:
    """A time.monotonic() instant on the running loop's clock (uvloop keeps its own)."""
    return asyncio.get_running_loop().time() + (monotonic - time.monotonic())


async def run_job(settings: ProcessorSettings) -> JobSummary:
    """Run one Job; SIGTERM and SIGINT end it gracefully after the batches already read."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await Job(settings, stop).run()
