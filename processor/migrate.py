"""Apply the SQL migrations in order, once each, safely from several processes at a time;
every wait (for a database still starting, for another migrator, for a table lock) ends by the
deadline of the `wait` budget.

A migration's DDL waits at most LOCK_TIMEOUT_S for its table lock and is then retried: an
ALTER queued behind a stuck transaction would otherwise queue every Job's statements behind
itself. The session ends its own stuck transactions and has the server probe the connection
(pgsession.SESSION_SETTINGS), so a migrator that dies holding the migration lock frees it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from importlib import resources

import asyncpg

from processor.grants import grant_app_role
from processor.pgsession import CLIENT_MARGIN_S, SESSION_SETTINGS
from processor.retry import POSTGRES_TRANSIENT, Backoff

logger = logging.getLogger(__name__)

# Any constant works; it only has to differ from other advisory locks used on the database.
MIGRATION_LOCK_KEY = 0x766F7465_6D696772  # "votemigr"
_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# One connection attempt; a server that accepts but never answers is retried like one that
# refuses (asyncpg's own default is 60 s).
CONNECT_TIMEOUT_S = 10.0
# Each lock wait (the migration lock, a table lock). Migrations here take milliseconds; a wait
# this long is on a stuck session or a long transaction, and is retried within the budget.
LOCK_TIMEOUT_S = 5.0
# Without a `wait` budget (tests, benchmarks, a developer's shell): how long the run may take.
DEFAULT_BUDGET_S = 120.0

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())
"""


class MigrationError(RuntimeError):
    """An applied migration differs from the file of the same version."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The packaged migrations, ordered by version."""
    found = []
    for entry in resources.files("processor.migrations").iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return found


async def migrate(
    database_url: str, app_role: str | None = None, *, wait: Backoff | None = None
) -> list[int]:
    """Apply pending migrations, then grant `app_role` (if given) the application's
    privileges; return the versions applied by this call. A database that does not answer yet,
    another migrator and a table lock are waited for, with backoff, until the deadline of
    `wait` (DEFAULT_BUDGET_S from now without it); GiveUpError after it."""
    if wait is None:
        wait = Backoff(0.1, 2.0, time.monotonic() + DEFAULT_BUDGET_S)
    return await wait.run(
        "migrate the database", lambda: _attempt(database_url, app_role, wait), POSTGRES_TRANSIENT
    )


async def _attempt(database_url: str, app_role: str | None, wait: Backoff) -> list[int]:
    left_s = max(wait.deadline - wait.clock(), 0.001)
    async with asyncio.timeout(left_s + CLIENT_MARGIN_S):
        conn = await asyncpg.connect(
            database_url,
            timeout=min(CONNECT_TIMEOUT_S, left_s),
            server_settings={
                **SESSION_SETTINGS,
                "lock_timeout": str(max(1, int(LOCK_TIMEOUT_S * 1000))),
                # The whole run ends by the budget's deadline, however long a statement is.
                "statement_timeout": str(max(1, int(left_s * 1000))),
            },
        )
        try:
            # A session lock, so concurrent runs (Helm hook retries, parallel tests) take turns.
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            applied = await _apply_pending(conn, load_migrations())
            if app_role is not None:
                await grant_app_role(conn, app_role)
                logger.info("application role granted", extra={"role": app_role})
        except BaseException:
            conn.terminate()  # ends the session, and so its lock, without waiting on it
            raise
        await conn.close()  # releases the migration lock with the session
    return applied


async def _apply_pending(conn: asyncpg.Connection, migrations: list[Migration]) -> list[int]:
    await conn.execute(_CREATE_LEDGER)
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    applied = {row["version"]: row["checksum"] for row in rows}
    done = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version} ({migration.name}) was changed after it "
                    "was applied; add a new migration instead"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
        logger.info("migration applied", extra={"version": migration.version})
        done.append(migration.version)
    return done
