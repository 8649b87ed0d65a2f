"""accepted_at in the Job's COPY rows: PostgreSQL reads from the text exactly the instant the
`accepted_ms` says, on the column-wise path and the entry-by-entry one, at any session time zone."""

from __future__ import annotations

import asyncio

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.voterows import VoteRows, add_ingest_votes, copy_instant, copy_options
from tests.support.votestate import OPTIONS
from votecontract.entry import MAX_ACCEPTED_MS

_ROWS_TABLE = """
CREATE TEMP TABLE copied (
    entry_ms bigint, entry_seq bigint, option text, voter_id text, accepted_at timestamptz)
"""
# extract() is exact (numeric). Not timestamptz 'epoch' + ms * interval '1 millisecond', which
# the Job computed before: the interval product goes through a double and is off by up to
# tens of microseconds past the year 2255 (2**53 microseconds).
_MISMATCHES = """
SELECT entry_seq, accepted_at, ms FROM copied JOIN unnest($1::bigint[]) WITH ORDINALITY AS
    expected(ms, position) ON position = entry_seq + 1
WHERE extract(epoch FROM accepted_at) * 1000 IS DISTINCT FROM ms
"""

_millis = st.one_of(
    st.integers(0, MAX_ACCEPTED_MS),
    st.integers(0, 2_000),  # the first seconds: values of fewer than four digits
    st.integers(MAX_ACCEPTED_MS - 2_000, MAX_ACCEPTED_MS),
    st.integers(1_700_000_000_000, 1_700_000_005_000),  # a few seconds of one day
)
_batches = st.lists(st.tuples(_millis, st.booleans()), min_size=1, max_size=60)


def entries(batch: list[tuple[int, bool]]) -> list[list[object]]:
    """Ingest-layout entries; some values with leading zeros (valid, at most 15 digits)."""
    return [
        [b"1-%d" % seq, [b"option", b"cats", b"voter_id", b"v", b"accepted_ms", raw]]
        for seq, (ms, padded) in enumerate(batch)
        for raw in [b"%015d" % ms if padded else b"%d" % ms]
    ]


async def mismatches(database_url: str, batch: list[tuple[int, bool]], zone: str) -> list[object]:
    column_wise = VoteRows()
    assert add_ingest_votes(column_wise, entries(batch), copy_options(OPTIONS))
    one_by_one = VoteRows.of([(1, seq, "cats", "v", ms) for seq, (ms, _) in enumerate(batch)])
    assert column_wise.payload() == one_by_one.payload()
    conn = await asyncpg.connect(database_url, server_settings={"TimeZone": zone})
    try:
        await conn.execute(_ROWS_TABLE)
        await conn.copy_to_table("copied", source=memoryview(column_wise.payload()))
        expected = [ms for ms, _ in batch]
        return [tuple(row) for row in await conn.fetch(_MISMATCHES, expected)]
    finally:
        await conn.close()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=_batches, zone=st.sampled_from(["UTC", "Pacific/Chatham", "America/St_Johns"]))
def test_postgres_reads_the_instant_the_milliseconds_say(
    database_url: str, batch: list[tuple[int, bool]], zone: str
) -> None:
    assert asyncio.run(mismatches(database_url, batch, zone)) == []


def test_an_instant_is_utc_to_the_millisecond() -> None:
    assert copy_instant(0) == b"1970-01-01 00:00:00.000+00"
    assert copy_instant(1_700_000_000_123) == b"2023-11-14 22:13:20.123+00"
    assert copy_instant(MAX_ACCEPTED_MS) == b"9999-12-31 23:59:59.999+00"
