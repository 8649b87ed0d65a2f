"""`python -m processor`: one drain-and-exit Job; `python -m processor migrate`: the schema."""

from __future__ import annotations

import asyncio
import logging
import sys

import asyncpg
import uvloop

from ingest.environment import SettingsError
from ingest.jsonlog import configure_logging
from processor.job import run_job
from processor.migrate import MigrationError, migrate
from processor.settings import ProcessorSettings
from processor.summary import Outcome

logger = logging.getLogger("processor")

USAGE = "usage: python -m processor [migrate]"


def main(argv: list[str]) -> int:
    """Exit 0 when drained, stopped or out of time; 1 when giving up; 2 on bad settings."""
    if argv not in ([], ["migrate"]):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        settings = ProcessorSettings.from_env()
    except SettingsError as exc:
        print(f"processor: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    if argv == ["migrate"]:
        return _migrate(settings)
    # uvloop: libuv's loop and transports cost the Job less CPU than asyncio's selector loop.
    summary = uvloop.run(run_job(settings))
    return 1 if summary.outcome is Outcome.GAVE_UP else 0


def _migrate(settings: ProcessorSettings) -> int:
    try:
        applied = asyncio.run(migrate(settings.database_url, settings.app_role))
    except (OSError, asyncpg.PostgresError, MigrationError) as exc:
        logger.error("migration failed", extra={"error": repr(exc)})  # noqa: TRY400
        return 1
    logger.info("schema up to date", extra={"applied": applied})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
