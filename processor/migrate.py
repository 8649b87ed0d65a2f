"""Apply the SQL migrations in order, once each, safely from several processes at a time;
wait (within a budget) for a database that is still starting."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from processor.grants import grant_app_role
from processor.retry import POSTGRES_TRANSIENT, Backoff

logger = logging.getLogger(__name__)

# Any constant works; it only has to differ from other advisory locks used on the database.
MIGRATION_LOCK_KEY = 0x766F7465_6D696772  # "votemigr"
_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# One connection attempt; a server that accepts but never answers is retried like one that
# refuses (asyncpg's own default is 60 s).
CONNECT_TIMEOUT_S = 10.0

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
    privileges; return the versions applied by this call. With `wait`, a database that does
    not answer yet is retried until its deadline (GiveUpError after it)."""
    conn = await _connect(database_url, wait)
    try:
        # A session lock, so concurrent runs (Helm hook retries, parallel tests) take turns.
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            applied = await _apply_pending(conn, load_migrations())
            if app_role is not None:
                await grant_app_role(conn, app_role)
                logger.info("application role granted", extra={"role": app_role})
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def _connect(database_url: str, wait: Backoff | None) -> asyncpg.Connection:
    if wait is None:
        return await asyncpg.connect(database_url)
    return await wait.run(
        "connect to the database",
        lambda: asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S),
        POSTGRES_TRANSIENT,
    )


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
