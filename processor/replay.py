"""Replay dead letters that are valid votes now: `python -m processor replay-dead-letters`.

A vote ingest answered 202 can still end as a dead letter: delivered more than
`MAX_DELIVERIES` times (Jobs that kept failing through a long PostgreSQL outage), or carrying
an option the processor did not know yet (ingest's `VOTE_OPTIONS` updated first). Such a vote
must still count. This command validates every dead letter not yet recorded against the
current settings, from its fields exactly as Redis held them (`dead_letters.entry_fields`: a
repeated field stays repeated, any bytes stay as they were; a row written before that column
existed cannot be reproduced exactly and is never replayed), and writes the valid ones
exactly as a Job would: with their original stream ID, so a replay is idempotent and
last-cast-wins still orders them by when they were cast.
Rows of `dead_letters` are kept as history (`GET /votes/{id}` answers `recorded` once the
event exists); the Redis dead-letter stream, a capped mirror for operators, is left as it is.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from processor.budget import RuntimeBudget
from processor.entries import Poison, Vote, option_lookup, parse_entry
from processor.pgsession import TRANSACTION_TIMEOUT_S, connect, wait_allowed_s
from processor.store import VoteStore
from processor.voterows import VoteRows

logger = logging.getLogger(__name__)

# Keyset pages in stream-ID order; a dead letter whose event exists was replayed already.
# dead_letters keys any stream ID (numeric), vote_events bigint ones: compared as they are,
# vote_events' key would be cast to numeric and its index left unused. The CASE casts only IDs
# that fit (an ID beyond bigint is never recorded, and parse_entry says why).
_UNRECORDED_DEAD_LETTERS = """
SELECT d.entry_ms::text, d.entry_seq::text, d.entry_fields
FROM dead_letters AS d
WHERE (d.entry_ms, d.entry_seq) > ($1::numeric, $2::numeric)
  AND CASE WHEN d.entry_ms > 9223372036854775807 OR d.entry_seq > 9223372036854775807 THEN true
           ELSE NOT EXISTS (SELECT FROM vote_events AS e
                            WHERE e.entry_ms = d.entry_ms::bigint
                              AND e.entry_seq = d.entry_seq::bigint)
      END
ORDER BY d.entry_ms, d.entry_seq
LIMIT $3
"""
PAGE_SIZE = 5_000
NOT_KEPT_EXACTLY = (
    "its exact fields were not kept (dead-lettered before migration 0003, or larger than "
    "1 MiB); it cannot be re-validated exactly, so it is not replayed"
)


@dataclass
class ReplayReport:
    """What a replay found: votes recorded, and why the others are still not votes."""

    recorded: int = 0
    valid: int = 0  # valid votes found (recorded < valid: a Job recorded some meanwhile)
    still_invalid: Counter[str] = field(default_factory=Counter)


async def replay_dead_letters(
    database_url: str,
    options: Sequence[str],
    *,
    dry_run: bool = False,
    runtime_s: float = 600.0,
) -> ReplayReport:
    """Record every unrecorded dead letter that validates against `options` now; every wait
    on PostgreSQL ends within `runtime_s` (a replay is idempotent: run it again to go on)."""
    report = ReplayReport()
    lookup = option_lookup(options)
    budget = RuntimeBudget.starting_now(runtime_s, grace_s=0)
    reader = await connect(database_url, budget)
    store = None if dry_run else await VoteStore.connect(database_url, options, budget)
    try:
        after = ("-1", "-1")
        while rows := await _page(reader, after, budget):
            after = (rows[-1]["entry_ms"], rows[-1]["entry_seq"])
            votes = _validated(rows, lookup, report)
            report.valid += len(votes)
            if store is not None and votes:
                counts = await store.write_batch(VoteRows.of(votes), [])
                report.recorded += counts.recorded
    finally:
        await reader.close()
        if store is not None:
            await store.close()
    return report


async def _page(
    reader: asyncpg.Connection, after: tuple[str, str], budget: RuntimeBudget
) -> list[asyncpg.Record]:
    timeout = wait_allowed_s(budget, TRANSACTION_TIMEOUT_S)
    rows: list[asyncpg.Record] = await reader.fetch(
        _UNRECORDED_DEAD_LETTERS, *after, PAGE_SIZE, timeout=timeout
    )
    return rows


def _validated(
    rows: Sequence[asyncpg.Record], options: dict[bytes, str], report: ReplayReport
) -> list[Vote]:
    votes: list[Vote] = []
    for row in rows:
        fields: list[bytes] | None = row["entry_fields"]
        if fields is None:
            report.still_invalid[NOT_KEPT_EXACTLY] += 1
            continue
        entry_id = f"{row['entry_ms']}-{row['entry_seq']}".encode()
        parsed = parse_entry(entry_id, fields, options)
        if isinstance(parsed, Poison):
            report.still_invalid[parsed.reason] += 1
        else:
            votes.append(parsed)
    return votes
