"""What PostgreSQL holds, read under the application role's grants (processor/grants.sql:
SELECT on the vote tables; the statistics views are readable by every role).

Every read is O(1) in the size of the tables, so a scrape costs the same at any volume:
- Votes recorded and dead letters are PostgreSQL's count of rows inserted into `vote_events`
  and `dead_letters` (`pg_stat_user_tables.n_tup_ins`), not `count(*)`: a count(*) scans the
  whole table (1.1 s for 10 million votes measured on the development machine), at every scrape
  of every ingest pod. The statistics count rows a rolled-back transaction inserted too (a Job
  killed in mid-batch, whose batch the next Job records again), restart at 0 after a crash or
  `pg_stat_reset()`, and reach the views within about a second of a commit: counters, for
  rates and increases, not an audit (the tables are that).
- The newest recorded vote is the one with the highest stream ID (one probe of the primary
  key); `recorded_at` is its transaction's start, `accepted_at` ingest's clock at the XADD.
- Ballots are the `tally` rows summed (one row per option): the total /results shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ingest.readside.database import Database

QUERY = """
SELECT
    (SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = 'vote_events'::regclass)
        AS events_inserted,
    (SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = 'dead_letters'::regclass)
        AS dead_letters_inserted,
    (SELECT coalesce(sum(votes), 0)::bigint FROM tally) AS ballots,
    newest.accepted_at,
    newest.recorded_at
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    -- NULL past Python's datetime (asyncpg would raise): the processor no longer records such
    -- an accepted_ms, but rows it recorded before may hold one.
    SELECT CASE WHEN accepted_at < timestamptz '10000-01-01 00:00:00+00' THEN accepted_at END
               AS accepted_at,
           recorded_at
    FROM vote_events
    ORDER BY entry_ms DESC, entry_seq DESC
    LIMIT 1
) AS newest ON true
"""


@dataclass(frozen=True, slots=True)
class NewestVote:
    accepted_at: datetime
    recorded_at: datetime

    @property
    def latency_s(self) -> float:
        """Accepted (ingest's clock) to recorded (PostgreSQL's clock)."""
        return (self.recorded_at - self.accepted_at).total_seconds()


@dataclass(frozen=True, slots=True)
class DatabaseReading:
    events_inserted: int
    dead_letters_inserted: int
    ballots: int
    newest: NewestVote | None  # None before the first vote is recorded (or past year 9999)


async def read_database(database: Database) -> DatabaseReading:
    """Raises DatabaseUnavailableError when PostgreSQL (or the schema) is not there."""
    row = await database.fetchrow(QUERY)
    assert row is not None  # a FROM without a WHERE always yields its one row
    newest = None
    if row["recorded_at"] is not None and row["accepted_at"] is not None:
        newest = NewestVote(row["accepted_at"], row["recorded_at"])
    return DatabaseReading(
        events_inserted=int(row["events_inserted"] or 0),
        dead_letters_inserted=int(row["dead_letters_inserted"] or 0),
        ballots=int(row["ballots"]),
        newest=newest,
    )
