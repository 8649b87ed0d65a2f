"""A vote PostgreSQL refuses for one of its values is dead-lettered alone; its batch is recorded.

Validation accepts only what the schema stores, so PostgreSQL refusing a validated vote for
its data (SQLSTATE class 22, `asyncpg.DataError`: a value out of range, a character the
database's encoding cannot hold) means a gap in validation. Left alone, such a vote would fail
its whole batch on every delivery, and since delivery counts condemn no valid vote, the Jobs
claiming it would never get past it to newer votes. Instead the batch is written again in
halves, each half that PostgreSQL refuses is halved again, and each single refused vote
becomes a dead letter with PostgreSQL's message: k refused votes among n cost about
2k * log2(n) small transactions. Other errors never get here: infrastructure errors are
transient (retried) or end the Job, and neither condemns a vote.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from processor.entries import Poison
from processor.store import BatchCounts, VoteStore
from processor.voterows import VoteRows, row_id

logger = logging.getLogger(__name__)

FieldsOf = Callable[[bytes], Awaitable[Sequence[bytes] | None]]
GONE = "(the entry was no longer in the stream)"


async def write_isolating(
    store: VoteStore, votes: VoteRows, dead: Sequence[Poison], fields_of: FieldsOf
) -> tuple[BatchCounts, VoteRows, list[Poison]]:
    """Write `votes` and `dead`, dead-lettering the votes PostgreSQL refuses for their data;
    return the counts, the votes that were recorded and the new dead letters."""
    total = await store.write_batch(VoteRows(), dead) if dead else BatchCounts(0, 0, 0, 0)
    kept: list[bytes] = []
    refused: list[tuple[bytes, str]] = []
    parts = [votes.rows()]
    while parts:
        part = parts.pop()
        try:
            counts = await store.write_batch(VoteRows.of_rows(part), [])
        except asyncpg.DataError as exc:
            if len(part) == 1:
                refused.append((part[0], f"PostgreSQL refused the vote: {exc}"))
                continue
            half = len(part) // 2
            parts += [part[half:], part[:half]]  # the first half next: stream-ID order
            continue
        total = _added(total, counts)
        kept += part
    poisons = [await _poison(row, reason, fields_of) for row, reason in refused]
    if poisons:
        total = _added(total, await store.write_batch(VoteRows(), poisons))
        logger.error(
            "PostgreSQL refused votes that passed validation; dead-lettered",
            extra={"ids": [p.entry_id.decode() for p in poisons], "reason": refused[0][1]},
        )
    return total, VoteRows.of_rows(kept), poisons


async def _poison(row: bytes, reason: str, fields_of: FieldsOf) -> Poison:
    entry_id = b"%d-%d" % row_id(row)
    fields = await fields_of(entry_id)
    if fields is None:
        return Poison(entry_id, [], f"{reason} {GONE}")
    return Poison(entry_id, fields, reason)


def _added(a: BatchCounts, b: BatchCounts) -> BatchCounts:
    return BatchCounts(*(x + y for x, y in zip(a, b, strict=True)))
