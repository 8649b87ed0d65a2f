"""The reading stage: own pending entries, then idle ones claimed, then new ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from redis.exceptions import ResponseError

from processor.batches import Batch, Validation, extend_batch, unique_entries
from processor.handoff import Handoff
from processor.retry import REDIS_TRANSIENT, Backoff
from processor.settings import ProcessorSettings
from processor.stream import RawEntry, VoteStream, is_missing_group
from processor.summary import Outcome

logger = logging.getLogger(__name__)

T = TypeVar("T")
_CURSOR_DONE = b"0-0"
_VALIDATION_SLICE = 500
_LOGGED_IDS = 100


class BatchReader:
    """Reads and validates batches into a queue until drained, out of time or stopped."""

    def __init__(
        self,
        settings: ProcessorSettings,
        stream: VoteStream,
        backoff: Backoff,
        stop: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.stream = stream
        self.backoff = backoff
        self.stop = stop
        self.validation = Validation.of(settings.options, settings.max_deliveries)
        self.stop_reason = Outcome.RUNNING
        # A delivering read (XREADGROUP >, XAUTOCLAIM) whose attempt failed may still have been
        # applied by Redis (the reply lost on a stalled connection): its entries are then
        # pending on this consumer, unseen by this run, until its own pending is read again.
        self.unseen_deliveries = False
        self.ready_file = Path(settings.ready_file) if settings.ready_file else None
        if self.ready_file is not None:
            self.ready_file.unlink(missing_ok=True)  # a marker left by an earlier run

    async def redis(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """Run a Redis call with retries; recreate the group at 0 if Redis lost it."""
        while True:
            try:
                return await self.backoff.run(what, action, REDIS_TRANSIENT)
            except ResponseError as exc:
                if not is_missing_group(exc):
                    raise
                logger.warning("consumer group missing; recreating it at 0", extra={"what": what})
                await self.backoff.run("ensure group", self.stream.ensure_group, REDIS_TRANSIENT)

    async def _delivering(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        async def attempt() -> T:
            try:
                return await action()
            except REDIS_TRANSIENT:
                self.unseen_deliveries = True
                raise

        return await self.redis(what, attempt)

    def take_unseen_deliveries(self) -> bool:
        """Whether a failed delivering read may have left entries pending unseen; resets it."""
        unseen, self.unseen_deliveries = self.unseen_deliveries, False
        return unseen

    async def read_all(self, out: Handoff[Batch | None]) -> None:
        """Fill `out` with batches, then put None."""
        self.stop_reason = await self._read_phases(out)
        await out.put(None)

    async def _read_phases(self, out: Handoff[Batch | None]) -> Outcome:
        for phase in (self._own_pending, self._claimed, self._new):
            reason = await phase(out)
            if reason is not None:
                return reason
        return Outcome.DRAINED

    def _should_stop(self) -> Outcome | None:
        if self.stop.is_set():
            return Outcome.STOPPED
        if self.backoff.expired():
            return Outcome.DEADLINE
        return None

    async def _own_pending(self, out: Handoff[Batch | None]) -> Outcome | None:
        after = b"0"
        while (reason := self._should_stop()) is None:
            read = partial(self.stream.read_pending, after, self._count)
            entries = await self.redis("read pending", read)
            self._mark_ready()
            if not entries:
                return None
            after = entries[-1][0]
            await out.put(await self._batch("pending", entries))
        return reason

    async def _claimed(self, out: Handoff[Batch | None]) -> Outcome | None:
        cursor = b"0-0"
        while (reason := self._should_stop()) is None:
            claim = partial(self.stream.claim, cursor, self.settings.claim_min_idle_ms, self._count)
            cursor, entries, deleted = await self._delivering("claim", claim)
            if deleted:
                logger.warning(
                    "claimed entries no longer exist; dropped from the pending list",
                    extra={
                        "count": len(deleted),
                        "ids": [entry_id.decode() for entry_id in deleted[:_LOGGED_IDS]],
                    },
                )
            if entries:
                await out.put(await self._batch("claimed", entries))
            if cursor == _CURSOR_DONE:
                return None
        return reason

    async def _new(self, out: Handoff[Batch | None]) -> Outcome | None:
        while (reason := self._should_stop()) is None:
            entries = await self._delivering("read", lambda: self.stream.read_new(self._count))
            self._mark_ready()
            if not entries:
                return Outcome.DRAINED
            await out.put(await self._batch("new", entries))
        return reason

    @property
    def _count(self) -> int:
        return self.settings.batch_size

    async def _batch(self, source: str, entries: list[RawEntry]) -> Batch:
        deliveries: dict[bytes, int] = {}
        if source != "new":
            first, last = entries[0][0], entries[-1][0]
            limit = len(entries) + 4 * self.settings.batch_size  # own in-flight entries too
            deliveries = await self.redis(
                "pending counts", lambda: self.stream.delivery_counts(first, last, limit)
            )
        batch = Batch(source)
        unique = unique_entries(entries)
        for start in range(0, len(unique), _VALIDATION_SLICE):
            chunk = unique[start : start + _VALIDATION_SLICE]
            extend_batch(batch, chunk, self.validation, deliveries)
            # Validation is the Job's main CPU work after parsing replies: yield now and then,
            # so a writer can send its next command at once and PostgreSQL never waits on us.
            await asyncio.sleep(0)
        if batch.over_limit:
            logger.warning(
                "entries delivered more than MAX_DELIVERIES times: valid votes are retried all"
                " the same; many such lines mean PostgreSQL or Redis keep failing the Jobs",
                extra={"source": source, "entries": batch.over_limit},
            )
        return batch

    def _mark_ready(self) -> None:
        """After the first successful read: KEDA counts the Job as pending until then."""
        if self.ready_file is not None:
            self.ready_file.parent.mkdir(parents=True, exist_ok=True)
            self.ready_file.touch()
            self.ready_file = None
