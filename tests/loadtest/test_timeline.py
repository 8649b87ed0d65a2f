from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

from loadtest.ledger import AcceptedVote, EntryId
from loadtest.timeline import run_timeline
from tests.support.databases import migrated_database


@pytest.fixture(scope="module")
def vote_db_url() -> Iterator[str]:
    with migrated_database("timeline") as url:
        yield url


async def test_votes_are_bucketed_by_second_of_acceptance_and_of_recording(
    vote_db_url: str,
) -> None:
    # (entry_ms, accepted at +s, recorded at +s); seconds count from the first, at 0.1 s.
    rows = [(1, 0.1, 0.3), (2, 0.5, 1.5), (3, 2.2, 2.4), (4, 0.2, 0.4)]
    conn = await asyncpg.connect(vote_db_url)
    try:
        await conn.executemany(
            "INSERT INTO vote_events (entry_ms, entry_seq, option, voter_id, accepted_at,"
            " recorded_at) VALUES ($1, 0, 'cats', 'v', to_timestamp(1e9 + $2::float8),"
            " to_timestamp(1e9 + $3::float8))",
            rows,
        )
        votes = [AcceptedVote(EntryId(ms, 0), "v", "cats") for ms in (1, 2, 3)]
        timeline = await run_timeline(conn, votes)
    finally:
        await conn.close()
    assert timeline.accepted == [2, 0, 1]
    assert timeline.recorded == [1, 1, 1]
    assert timeline.p50_ms[1] is None
    assert timeline.p50_ms[0] == pytest.approx(600, abs=1)  # latencies 200 and 1000 ms
    assert timeline.p99_ms[2] == pytest.approx(200, abs=1)
