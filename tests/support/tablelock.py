"""PostgreSQL locks held by a test across blocking calls (helm, kubectl). A table lock: Jobs
that have read a batch then wait on their INSERT with the batch pending, a deterministic
"mid-batch" instead of a guessed delay."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg


@contextmanager
def share_lock(url: str, table: str) -> Iterator[None]:
    """`LOCK TABLE table IN SHARE MODE` (blocks INSERT and COPY, not SELECT) for the block."""
    with asyncio.Runner() as runner:
        conn: asyncpg.Connection = runner.run(asyncpg.connect(url))
        try:
            runner.run(conn.execute(f"BEGIN; LOCK TABLE {table} IN SHARE MODE"))
            yield
        finally:
            runner.run(conn.execute("ROLLBACK"))
            runner.run(conn.close())


@contextmanager
def advisory_lock(url: str, key: int) -> Iterator[None]:
    """`pg_advisory_lock(key)` held by a session of the test's for the block: e.g. the migration
    lock (processor/migrate.py), so a migration Job waits, running, until the test lets go."""
    with asyncio.Runner() as runner:
        conn: asyncpg.Connection = runner.run(asyncpg.connect(url))
        try:
            runner.run(conn.execute("SELECT pg_advisory_lock($1)", key))
            yield
        finally:
            runner.run(conn.close())  # ends the session, and its lock
