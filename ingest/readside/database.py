"""The read side's PostgreSQL pool: lazy, bounded and timed, so Postgres trouble means 503s on
the read endpoints while `POST /vote` (which needs only Redis) keeps accepting votes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from votecontract.environment import redact_url

logger = logging.getLogger(__name__)

# What a query can raise when the server is down, restarting, slow or missing the schema.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


class DatabaseUnavailableError(Exception):
    """Postgres did not answer in time (or at all); endpoints turn this into a 503."""


class Database:
    """An asyncpg pool opened in the app's lifespan.

    `min_size=0` means opening never connects: the service starts while Postgres is down and
    the first query connects. Every query is bounded by `timeout_s` (acquire and run).
    """

    def __init__(self, url: str, *, timeout_s: float = 2.0, max_size: int = 5) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.url,
            min_size=0,
            max_size=self.max_size,
            command_timeout=self.timeout_s,
            timeout=self.timeout_s,
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; any connection or query failure becomes DatabaseUnavailableError."""
        if self._pool is None:
            raise DatabaseUnavailableError("database pool is not open")
        try:
            async with self._pool.acquire(timeout=self.timeout_s) as conn:
                yield conn
        except DATABASE_ERRORS as exc:
            logger.warning(
                "database query failed",
                extra={"database": redact_url(self.url), "error": repr(exc)},
            )
            raise DatabaseUnavailableError(type(exc).__name__) from exc

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(query, *args)
            return row
