"""One source of pipeline readings (the stream, PostgreSQL): its last good value, when that was
read, and whether the last attempt succeeded.

An attempt is bounded by a timeout and failures keep the last good value, so /metrics serves
what was last known together with its age rather than waiting on, or failing with, a slow or
absent server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from redis.exceptions import RedisError

from ingest.readside.database import DatabaseUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What a read raises when its server is down, slow, refusing or missing the schema.
READ_ERRORS: tuple[type[Exception], ...] = (
    RedisError,
    OSError,
    TimeoutError,
    DatabaseUnavailableError,
)


class Reading(Generic[T]):
    def __init__(
        self,
        source: str,
        read: Callable[[], Awaitable[T]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self._read = read
        self._clock = clock
        self.value: T | None = None
        self.read_at: float | None = None  # clock of the last success; None: never succeeded
        self.attempted_at: float | None = None
        self.up = False

    def due(self, max_age_s: float) -> bool:
        """No attempt yet, or the last one is at least `max_age_s` old."""
        return self.attempted_at is None or self._clock() - self.attempted_at >= max_age_s

    def age_s(self) -> float | None:
        """Seconds since the value was read; None when it never was."""
        return None if self.read_at is None else self._clock() - self.read_at

    async def refresh(self, timeout_s: float) -> None:
        """Read once, within `timeout_s`; on failure keep the last value and mark it down."""
        first = self.attempted_at is None
        self.attempted_at = self._clock()
        try:
            async with asyncio.timeout(timeout_s):
                value = await self._read()
        except READ_ERRORS as exc:
            if self.up or first:
                logger.warning(
                    "pipeline metrics: read failed, serving the last values",
                    extra={"source": self.source, "error": str(exc) or repr(exc)},
                )
            self.up = False
            return
        if not self.up and not first:
            logger.info("pipeline metrics: read again", extra={"source": self.source})
        self.value, self.read_at, self.up = value, self._clock(), True
