"""The application role's privileges, granted by the migration role that owns the schema."""

from __future__ import annotations

from importlib import resources

import asyncpg

GRANTS = resources.files("processor").joinpath("grants.sql")


def quote_identifier(name: str) -> str:
    """A PostgreSQL identifier quoted the way quote_ident() does it, for any name."""
    return '"' + name.replace('"', '""') + '"'


async def grant_app_role(conn: asyncpg.Connection, role: str) -> None:
    """Give `role` exactly the application's privileges (in one transaction)."""
    database = await conn.fetchval("SELECT current_database()")
    sql = GRANTS.read_text(encoding="utf-8").format(
        role=quote_identifier(role), database=quote_identifier(str(database))
    )
    async with conn.transaction():
        await conn.execute(sql)
