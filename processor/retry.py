"""Retry with exponential backoff inside the Job's runtime budget."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import redis.exceptions

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Failures that a reconnect and a later attempt can cure; anything else ends the Job (its
# entries stay pending for the next one). Timeouts are among them: our own lock_timeout and
# statement_timeout (QueryCanceledError is an OperatorInterventionError), the client-side
# bound (TimeoutError), and idle_in_transaction_session_timeout ending our session.
POSTGRES_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
)
REDIS_TRANSIENT: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    # `maxmemory` reached (noeviction): only `denyoom` commands are refused, which a Job needs
    # solely to create a missing group; other Jobs' trims or an operator free memory again.
    redis.exceptions.OutOfMemoryError,
    OSError,
)


class GiveUpError(RuntimeError):
    """A dependency stayed unavailable past the runtime budget."""


Clock = Callable[[], float]


class Backoff:
    """Retries an action on transient errors until the deadline (on `clock`) passes."""

    def __init__(
        self, initial_s: float, max_s: float, deadline: float, clock: Clock = time.monotonic
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.deadline = deadline
        self.clock = clock

    def expired(self) -> bool:
        return self.clock() >= self.deadline

    async def run(
        self,
        what: str,
        action: Callable[[], Awaitable[T]],
        transient: tuple[type[BaseException], ...],
    ) -> T:
        delay = self.initial_s
        while True:
            try:
                return await action()
            except transient as exc:
                if self.clock() + delay > self.deadline:
                    raise GiveUpError(f"{what}: still failing at the end of the budget") from exc
                logger.warning(
                    "retrying", extra={"what": what, "error": repr(exc), "delay_s": delay}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_s)
