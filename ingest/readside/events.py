"""`GET /results/stream`: Server-Sent Events carrying the results whenever they change.

One poller per app reads the (cached) results while anyone is subscribed and fans each change
out to every open stream, so a thousand open pages cost Postgres what one does. With nobody
subscribed, nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent

from ingest.readside.database import DatabaseUnavailableError
from ingest.readside.results import Results

logger = logging.getLogger(__name__)

RESULTS_EVENT = "results"
SHUTDOWN_GRACE_S = 1.0


class ResultsBroadcaster:
    """Polls `source` every `interval_s` while there are subscribers; publishes changes only."""

    def __init__(self, source: Callable[[], Awaitable[Results]], interval_s: float = 1.0) -> None:
        self._source = source
        self._interval_s = interval_s
        self._latest: Results | None = None
        self._changed = asyncio.Event()
        self._subscribers = 0
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def subscribers(self) -> int:
        return self._subscribers

    @property
    def polling(self) -> bool:
        """Whether the poller runs (it stops once the last subscriber left)."""
        return self._poller is not None and not self._poller.done()

    async def updates(self, stop: anyio.Event | None = None) -> AsyncIterator[Results]:
        """The current results at once (after the first poll), then each change, until
        `close()` or `stop` is set."""
        self._subscribers += 1
        self._ensure_poller()
        try:
            seen: Results | None = None
            while not self._closed and not (stop is not None and stop.is_set()):
                changed = self._changed
                latest = self._latest
                if latest is not None and latest is not seen:
                    seen = latest
                    yield latest
                    continue
                await _first_of(changed, stop)
        finally:
            self._subscribers -= 1

    async def close(self) -> None:
        """Stop polling and end every subscriber's stream (app shutdown)."""
        self._closed = True
        self._changed.set()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    def _ensure_poller(self) -> None:
        if not self._closed and (self._poller is None or self._poller.done()):
            self._poller = asyncio.create_task(self._poll(), name="results-broadcaster")

    async def _poll(self) -> None:
        failing = False
        while self._subscribers > 0 and not self._closed:
            try:
                self._publish(await self._source())
                failing = False
            except DatabaseUnavailableError as exc:
                if not failing:
                    logger.warning("results stream: results unavailable", extra={"error": str(exc)})
                failing = True
            await asyncio.sleep(self._interval_s)
        # Idle: forget the snapshot so the next subscriber never starts from stale figures.
        self._latest = None

    def _publish(self, results: Results) -> None:
        if results.same_figures(self._latest):
            return
        self._latest = results
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


async def _first_of(changed: asyncio.Event, stop: anyio.Event | None) -> None:
    if stop is None:
        await changed.wait()
        return
    waiters = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def results_stream_response(
    broadcaster: ResultsBroadcaster, *, heartbeat_s: float = 15.0, retry_ms: int = 3000
) -> EventSourceResponse:
    """`GET /results/stream`: `event: results` with the `GET /results` JSON on each change,
    and a comment line every `heartbeat_s` so proxies keep the connection open and clients
    notice a dead one. On server shutdown (SIGTERM) the stream ends cleanly, so uvicorn is not
    held up by open pages; browsers reconnect after `retry_ms`."""
    shutdown = anyio.Event()

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for results in broadcaster.updates(stop=shutdown):
            data = json.dumps(results.to_json(), separators=(",", ":"))
            yield ServerSentEvent(data=data, event=RESULTS_EVENT, retry=retry_ms)

    return EventSourceResponse(
        events(),
        ping=heartbeat_s,
        send_timeout=heartbeat_s,
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_S,
    )
