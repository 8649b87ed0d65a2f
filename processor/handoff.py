"""Queues between the Job's stages that stop waiting once any stage has failed.

When a stage fails, asyncio.TaskGroup cancels the others, but on Python 3.11 a cancel can be
lost: `asyncio.wait_for` returns the inner result when the cancel arrives just as the inner
call completes (CPython gh-86296). redis-py calls it on every command (with redis-py 8.2,
about one cancel in five of a task looping on a command was lost here), and so does asyncpg.
A stage whose cancel was lost went back to its queue and waited forever for an item that the
failed stage would never send: the Job hung instead of ending. So a failing stage also sets
`failed` (see `run_stage`), and every get and put here ends with PipelineAbortedError once it
is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class PipelineAbortedError(Exception):
    """Another stage of the Job failed; its error is the one the Job reports."""


class Handoff(Generic[T]):
    """A bounded queue from one stage to the next."""

    def __init__(self, maxsize: int, failed: asyncio.Event) -> None:
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize)
        self._failed = failed

    async def put(self, item: T) -> None:
        await self._unless_failed(self._queue.put(item))

    async def get(self) -> T:
        return await self._unless_failed(self._queue.get())

    async def _unless_failed(self, waiting: Coroutine[Any, Any, R]) -> R:
        if self._failed.is_set():
            waiting.close()
            raise PipelineAbortedError
        operation = asyncio.ensure_future(waiting)
        failure = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait((operation, failure), return_when=asyncio.FIRST_COMPLETED)
        finally:
            failure.cancel()
            if not operation.done():
                operation.cancel()
        if operation.done() and not operation.cancelled():
            return operation.result()
        raise PipelineAbortedError


async def run_stage(work: Awaitable[None], failed: asyncio.Event) -> None:
    """Run one stage; if it fails, set `failed` so that the other stages stop waiting."""
    try:
        await work
    except PipelineAbortedError:
        return  # a consequence: the stage that failed reports its own error
    except BaseException:
        failed.set()
        raise
