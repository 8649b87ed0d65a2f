"""Hooks that hold an in-process Job at a chosen point, so that a fault test injects its fault
at that point rather than after a guessed delay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from processor.entries import Poison
from processor.job import Job


class SettleGate:
    """Holds `job` once its `after`-th batch is acked, until `open()`.

    While held, the Job cannot finish: its other stages fill their bounded queues and wait.
    """

    def __init__(self, job: Job, after: int) -> None:
        self.reached = asyncio.Event()
        self._opened = asyncio.Event()
        self._after = after
        self._settled = 0
        self._settle = job.stream.settle
        job.stream.settle = self._gated  # type: ignore[method-assign]

    async def _gated(self, ids: Sequence[bytes], dead: Sequence[Poison]) -> int:
        refused = await self._settle(ids, dead)
        self._settled += 1
        if self._settled == self._after:
            self.reached.set()
            await self._opened.wait()
        return refused

    async def wait_reached(self, within_s: float = 60) -> None:
        async with asyncio.timeout(within_s):
            await self.reached.wait()

    def open(self) -> None:
        self._opened.set()


class LogWatch(logging.Handler):
    """Sets `seen` once a record with `message` (and these extra fields) is logged."""

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(logging.DEBUG)
        self.seen = asyncio.Event()
        self._message, self._fields = message, fields

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == self._message and all(
            getattr(record, key, None) == value for key, value in self._fields.items()
        ):
            self.seen.set()

    async def wait(self, within_s: float = 60) -> None:
        async with asyncio.timeout(within_s):
            await self.seen.wait()


@contextmanager
def watch_log(logger: str, message: str, **fields: object) -> Iterator[LogWatch]:
    """A LogWatch on `logger` for the duration of the block."""
    watch = LogWatch(message, **fields)
    target = logging.getLogger(logger)
    target.addHandler(watch)
    try:
        yield watch
    finally:
        target.removeHandler(watch)
