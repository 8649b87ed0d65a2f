"""`python -m processor`: one drain-and-exit Job; `migrate`: the schema;
`replay-dead-letters [--dry-run]`: record the dead letters that are valid votes now."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time

import asyncpg
import uvloop

from processor.job import run_job
from processor.migrate import MigrationError, migrate
from processor.replay import replay_dead_letters
from processor.retry import Backoff, GiveUpError
from processor.settings import ProcessorSettings
from processor.summary import Outcome
from votecontract.environment import SettingsError
from votecontract.jsonlog import configure_logging

logger = logging.getLogger("processor")

USAGE = "usage: python -m processor [migrate | replay-dead-letters [--dry-run]]"
_COMMANDS: tuple[list[str], ...] = (
    [],
    ["migrate"],
    ["replay-dead-letters"],
    ["replay-dead-letters", "--dry-run"],
)


def main(argv: list[str]) -> int:
    """Exit 0 when drained, stopped or out of time; 1 when giving up; 2 on bad settings."""
    if argv not in _COMMANDS:
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
    if argv[:1] == ["replay-dead-letters"]:
        return _replay(settings, dry_run=argv[1:] == ["--dry-run"])
    tune_gc()
    # uvloop: libuv's loop and transports cost the Job less CPU than asyncio's selector loop.
    summary = uvloop.run(run_job(settings))
    return 1 if summary.outcome is Outcome.GAVE_UP else 0


# A batch's reply is 20,000 and more lists (each entry and its fields) that live until the
# batch is acked; at the default threshold (700 allocations) the collector ran every few hundred
# of them and walked the survivors each time: 15-20% of a drain's Job CPU (perf and py-spy,
# 200k votes). Ten interleaved drains with this: Job CPU 1.46 -> 1.21 s, 79k -> 85k votes/s.
# What is already loaded is frozen out of every collection; what a Job leaves in cycles
# (asyncio's exceptions and their tracebacks) is still collected, every 100,000 allocations.
GC_THRESHOLDS = (100_000, 20, 100)


def tune_gc() -> None:
    """Fewer, cheaper cyclic collections for a short-lived process of large replies."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _migrate(settings: ProcessorSettings) -> int:
    # The Helm hook may start with the database (bundled PostgreSQL, or one still booting):
    # retry connecting within MIGRATE_WAIT_S, then fail and leave the rest to backoffLimit.
    wait = Backoff(
        settings.retry_backoff_ms / 1000,
        settings.retry_backoff_max_ms / 1000,
        time.monotonic() + settings.migrate_wait_s,
    )
    try:
        applied = asyncio.run(migrate(settings.database_url, settings.app_role, wait=wait))
    except (OSError, asyncpg.PostgresError, MigrationError, GiveUpError) as exc:
        logger.error("migration failed", extra={"error": repr(exc)})  # noqa: TRY400
        return 1
    logger.info("schema up to date", extra={"applied": applied})
    return 0


def _replay(settings: ProcessorSettings, *, dry_run: bool) -> int:
    replay = replay_dead_letters(
        settings.database_url,
        settings.options,
        dry_run=dry_run,
        runtime_s=settings.max_runtime_s,
    )
    try:
        report = asyncio.run(replay)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        logger.error("replay failed", extra={"error": repr(exc)})  # noqa: TRY400
        return 1
    logger.info(
        "dead letters replayed" if not dry_run else "dead letters checked (dry run)",
        extra={
            "valid_votes": report.valid,
            "recorded": report.recorded,
            "still_invalid": report.still_invalid.total(),
            "still_invalid_reasons": dict(report.still_invalid.most_common(20)),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
