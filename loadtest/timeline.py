"""Second-by-second view of an end-to-end run from vote_events: votes accepted and recorded
per second, and the acceptance-to-recording latency of the votes accepted in each second."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from loadtest.ledger import AcceptedVote

RUN_EVENTS = """
    WITH e AS (
        SELECT e.accepted_at, e.recorded_at,
               extract(epoch FROM e.recorded_at - e.accepted_at) * 1000 AS latency_ms
        FROM vote_events e JOIN unnest($1::bigint[], $2::bigint[]) AS a(ms, seq)
          ON e.entry_ms = a.ms AND e.entry_seq = a.seq),
    t0 AS (SELECT min(accepted_at) AS t0 FROM e)
"""


@dataclass(frozen=True, slots=True)
class Timeline:
    """Index i of each list is second i after the first accepted vote."""

    accepted: list[int]
    recorded: list[int]
    p50_ms: list[float | None]
    p99_ms: list[float | None]

    @property
    def seconds(self) -> int:
        return len(self.accepted)


async def run_timeline(conn: asyncpg.Connection, votes: Sequence[AcceptedVote]) -> Timeline:
    ids = ([v.entry_id.ms for v in votes], [v.entry_id.seq for v in votes])
    by_acceptance = await conn.fetch(
        RUN_EVENTS
        + """
        SELECT floor(extract(epoch FROM accepted_at - t0))::int, count(*),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)
        FROM e, t0 GROUP BY 1 ORDER BY 1
        """,
        *ids,
    )
    by_recording = await conn.fetch(
        RUN_EVENTS + "SELECT floor(extract(epoch FROM recorded_at - t0))::int, count(*)"
        " FROM e, t0 GROUP BY 1 ORDER BY 1",
        *ids,
    )
    seconds = 1 + max([r[0] for r in [*by_acceptance, *by_recording]], default=-1)
    timeline = Timeline([0] * seconds, [0] * seconds, [None] * seconds, [None] * seconds)
    for second, count, p50, p99 in by_acceptance:
        timeline.accepted[second] = count
        timeline.p50_ms[second], timeline.p99_ms[second] = p50, p99
    for second, count in by_recording:
        timeline.recorded[second] = count
    return timeline
