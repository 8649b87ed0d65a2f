"""What the processor accepts as `accepted_ms`, every reader represents: no 500 on the read side
for a hostile value, pending or after a Job, and both processor paths agree on the rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.cookies import COOKIE_LAST_VOTE
from ingest.readside.status import VoteStatus, accepted_at_of
from ingest.settings import IngestSettings
from processor.entries import Poison, option_lookup, parse_entry
from processor.job import Job
from processor.settings import ProcessorSettings
from processor.voterows import VoteRows, add_ingest_votes, copy_options
from tests.support.readside import read_client
from tests.support.votestate import OPTIONS
from votecontract.entry import MAX_ACCEPTED_MS
from votecontract.names import FIELD_ACCEPTED_MS, FIELD_OPTION, FIELD_VOTER_ID, StreamNames

LAST_REPRESENTABLE = b"253402300799999"  # 9999-12-31T23:59:59.999Z
HOSTILE = {
    "past year 9999": b"253402300800000",
    "fifteen nines": b"999999999999999",
    "Arabic-Indic, 13 digits": ("\u0661\u0667" + "\u0660" * 11).encode(),
    "Arabic-Indic, 15 digits": ("\u0669" * 15).encode(),
    "superscript two": "\u00b2".encode(),
    "fullwidth digits": "\uff11\uff17\uff10\uff10".encode(),
}


def read_settings(database_url: str, redis_url: str, names: StreamNames) -> IngestSettings:
    return IngestSettings(
        database_url=database_url, redis_url=redis_url, names=names, options=OPTIONS
    )


async def xadd(redis: aioredis.Redis, names: StreamNames, accepted_ms: bytes) -> str:
    fields = {FIELD_OPTION: "cats", FIELD_VOTER_ID: "v1", FIELD_ACCEPTED_MS: accepted_ms}
    entry_id = await redis.xadd(names.stream, fields)  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def status_and_page(http: httpx.AsyncClient, entry_id: str) -> dict[str, str]:
    status = await http.get(f"/votes/{entry_id}")
    assert status.status_code == 200, (entry_id, status.text)
    http.cookies.set(COOKIE_LAST_VOTE, entry_id)
    page = await http.get("/")
    assert page.status_code == 200, (entry_id, page.text)
    body: dict[str, str] = status.json()
    return body


@pytest.mark.usefixtures("db")
async def test_hostile_accepted_ms_reads_fine_pending_and_after_the_job(
    database_url: str, redis_url: str, redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    ids = {name: await xadd(redis_client, stream_names, raw) for name, raw in HOSTILE.items()}
    last = await xadd(redis_client, stream_names, LAST_REPRESENTABLE)
    async with read_client(read_settings(database_url, redis_url, stream_names)) as http:
        for entry_id in ids.values():
            pending = await status_and_page(http, entry_id)
            assert pending["state"] == "pending"
            assert "accepted_at" not in pending  # the processor refuses the value
        assert (await status_and_page(http, last))["accepted_at"] == "9999-12-31T23:59:59.999+00:00"
        settings = ProcessorSettings(
            redis_url=redis_url, database_url=database_url, names=stream_names, max_runtime_s=30
        )
        await Job(settings).run()
        for entry_id in ids.values():
            dead = await status_and_page(http, entry_id)
            assert dead["state"] == "dead_lettered"
            assert FIELD_ACCEPTED_MS in dead["reason"]
        recorded = await status_and_page(http, last)
        assert recorded["state"] == "recorded"
        assert recorded["accepted_at"] == "9999-12-31T23:59:59.999+00:00"


async def test_a_vote_recorded_beyond_year_9999_before_the_rule_reads_fine(
    database_url: str, redis_url: str, db: asyncpg.Connection, stream_names: StreamNames
) -> None:
    # What the processor recorded for "999999999999999" before it kept the year within 9999.
    await db.execute(
        "INSERT INTO vote_events (entry_ms, entry_seq, option, voter_id, accepted_at)"
        " VALUES (5, 0, 'cats', 'v1', timestamptz 'epoch' + 999999999999999 * interval '1 ms')"
    )
    await db.execute(
        "INSERT INTO ballots (voter_id, option, entry_ms, entry_seq) VALUES ('v1', 'cats', 5, 0)"
    )
    async with read_client(read_settings(database_url, redis_url, stream_names)) as http:
        body = await status_and_page(http, "5-0")
        metrics = await http.get("/metrics")  # reads the newest recorded vote
    assert metrics.status_code == 200
    assert (body["state"], body["ballot"]) == ("recorded", "current")
    assert "accepted_at" not in body


_digits_of_any_script = st.characters(categories=["Nd", "No"])
_accepted_ms = st.one_of(
    st.integers(0, 10**16).map(lambda n: b"%d" % n),
    st.integers(MAX_ACCEPTED_MS - 3, MAX_ACCEPTED_MS + 3).map(lambda n: b"%d" % n),
    st.integers(0, MAX_ACCEPTED_MS).map(lambda n: b"%015d" % n),  # leading zeros
    st.text(_digits_of_any_script, min_size=1, max_size=16).map(str.encode),
    st.binary(max_size=17),
)


@settings(max_examples=500, deadline=None)
@given(raw=_accepted_ms)
def test_both_processor_paths_and_the_read_side_agree_on_accepted_ms(raw: bytes) -> None:
    fields = [b"option", b"cats", b"voter_id", b"v1", b"accepted_ms", raw]
    whole_run = add_ingest_votes(VoteRows(), [[b"1-0", fields]], copy_options(OPTIONS))
    one_by_one = parse_entry(b"1-0", fields, option_lookup(OPTIONS))
    assert whole_run == (not isinstance(one_by_one, Poison))
    pending_at = accepted_at_of(raw)
    assert (pending_at is not None) == whole_run
    if pending_at is not None:
        assert pending_at == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(raw))
        VoteStatus(id="1-0", state="pending", accepted_at=pending_at).to_json()
