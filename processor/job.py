"""One drain-and-exit run: read batches, record them in PostgreSQL, ack, trim, exit.

Three stages overlap: while one batch is written to PostgreSQL, the next is read from Redis
and validated, and the previous one is acked and the stream trimmed. A batch is acked only
after its transaction committed, so a Job killed at any instant leaves its entries pending;
the writes are idempotent per stream ID, so their redelivery changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from functools import partial

import redis.exceptions

from processor.batches import Batch
from processor.consumers import ConsumerJanitor
from processor.handoff import Handoff, run_stage
from processor.reader import BatchReader
from processor.retry import POSTGRES_TRANSIENT, REDIS_TRANSIENT, Backoff, Clock, GiveUpError
from processor.settings import ProcessorSettings
from processor.store import BatchCounts, VoteStore
from processor.stream import VoteStream
from processor.summary import JobSummary, Outcome
from processor.trim import StreamTrimmer

logger = logging.getLogger(__name__)

Committed = tuple[Batch, BatchCounts, float]
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
        self.backoff = Backoff(
            settings.retry_backoff_ms / 1000,
            settings.retry_backoff_max_ms / 1000,
            self.started + settings.max_runtime_s,
            clock,
        )
        self.stream = VoteStream.from_url(settings.redis_url, settings.names, settings.consumer)
        self.trimmer = StreamTrimmer(self.stream.redis, settings.names.stream)
        self.reader = BatchReader(settings, self.stream, self.backoff, self.stop)
        self.stores: list[VoteStore | None] = [None] * settings.writers
        self.writers_running = settings.writers
        self.summary = JobSummary(settings.consumer)
        self.commits = 0

    async def run(self) -> JobSummary:
        """Drain the stream; the summary says why the run ended."""
        try:
            await self.reader.redis("ensure group", self.stream.ensure_group)
            await self._pipeline()
            self.summary.outcome = self.reader.stop_reason
        except* GiveUpError as group:
            self.summary.outcome = Outcome.GAVE_UP
            reason = str(group.exceptions[0])
        finally:
            await self._close()
        if self.summary.outcome is Outcome.GAVE_UP:
            logger.error("giving up; unacked entries stay pending", extra={"error": reason})
        self.summary.log(self.clock() - self.started)
        return self.summary

    async def _pipeline(self) -> None:
        failed = asyncio.Event()  # any stage failed: the others stop (see processor.handoff)
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
            store = await VoteStore.connect(self.settings.database_url, self.settings.options)
            self.stores[slot] = store
        try:
            return await store.write_batch(batch.votes, batch.dead)
        except POSTGRES_TRANSIENT:
            store.abort()
            self.stores[slot] = None
            raise

    def _after_commit(self) -> None:
        self.commits += 1
        if self.commits == self.settings.test_stop_after_commit:
            # Test-only (PROCESSOR_TEST_STOP_AFTER_COMMIT): freeze between COMMIT and XACK so a
            # crash test can SIGKILL the Job at exactly that instant.
            os.kill(os.getpid(), signal.SIGSTOP)

    async def _settle_all(self, committed: Handoff[Committed | None]) -> None:
        while (item := await committed.get()) is not None:
            batch, counts, started = item
            await self.reader.redis("ack", partial(self.stream.settle, batch.ids, batch.dead))
            trimmed = await self.reader.redis("trim", self.trimmer.trim)
            self.summary.add(batch, counts, trimmed, time.monotonic() - started)

    async def _close(self) -> None:
        for store in self.stores:
            if store is not None:
                await store.close()
        try:
            removed = await ConsumerJanitor(self.stream.redis, self.settings.names).clean(
                self.settings.consumer, self.settings.stale_consumer_idle_ms
            )
            if removed:
                logger.info("consumers deleted", extra={"consumers": removed})
        except _CLEANUP_ERRORS as exc:
            logger.warning("consumer cleanup skipped", extra={"error": repr(exc)})
        await self.stream.close()


async def run_job(settings: ProcessorSettings) -> JobSummary:
    """Run one Job; SIGTERM and SIGINT end it gracefully after the batches already read."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await Job(settings, stop).run()
