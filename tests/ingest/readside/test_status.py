from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from ingest.readside.database import Database
from ingest.readside.status import InvalidVoteIdError, VoteStatus, VoteStatusService, parse_vote_id
from ingest.settings import IngestSettings
from tests.support.readside import read_client, record_vote, split_id
from tests.support.servers import free_port
from votecontract.names import FIELD_ACCEPTED_MS, FIELD_OPTION, FIELD_VOTER_ID, StreamNames


async def _accept(redis: aioredis.Redis, names: StreamNames, option: str, voter: str) -> str:
    """XADD a vote as ingest does."""
    fields = {FIELD_OPTION: option, FIELD_VOTER_ID: voter, FIELD_ACCEPTED_MS: "1700000000123"}
    entry_id: str = await redis.xadd(names.stream, fields)
    return entry_id


@pytest.mark.parametrize(
    "raw", ["abc", "1-", "-1", "1-2-3", "1.5-0", " 1-0", "1-0 ", "\u0661-0", "1" * 21 + "-0"]
)
def test_parse_vote_id_rejects_malformed(raw: str) -> None:
    with pytest.raises(InvalidVoteIdError):
        parse_vote_id(raw)


def test_parse_vote_id_gives_none_beyond_what_a_stream_id_can_be() -> None:
    # Well-formed IDs (schemathesis generates them from the spec's pattern) that no Redis
    # stream can hold: 404, not 400. Beyond bigint is a stream ID (dead-lettered if written).
    assert parse_vote_id(f"{2**64}-0") is None
    assert parse_vote_id(f"7-{2**64}") is None
    assert parse_vote_id(f"{2**63}-0") == (2**63, 0)
    assert parse_vote_id(f"{2**64 - 1}-{2**64 - 1}") == (2**64 - 1, 2**64 - 1)


def test_status_json_leaves_out_fields_the_state_lacks() -> None:
    assert VoteStatus(id="1-0", state="pending", option="cats").to_json() == {
        "id": "1-0",
        "state": "pending",
        "option": "cats",
    }


@pytest.mark.usefixtures("pg")
@pytest.mark.parametrize("raw", ["abc", "12-x", "1" * 21 + "-0"])
async def test_malformed_id_is_400(read_http: httpx.AsyncClient, raw: str) -> None:
    response = await read_http.get(f"/votes/{raw}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_vote_id"
    assert "vote id" in response.json()["detail"]


@pytest.mark.usefixtures("pg")
async def test_never_accepted_id_is_404(read_http: httpx.AsyncClient) -> None:
    response = await read_http.get("/votes/1700000000000-0")
    assert response.status_code == 404
    assert response.json() == {
        "error": "vote_not_found",
        "detail": "no vote was accepted with this id",
        "id": "1700000000000-0",
    }


@pytest.mark.usefixtures("pg")
async def test_well_formed_id_beyond_bigint_is_404(read_http: httpx.AsyncClient) -> None:
    response = await read_http.get("/votes/95285875980443653507-80")
    assert response.status_code == 404
    assert response.json()["error"] == "vote_not_found"


@pytest.mark.usefixtures("pg")
async def test_vote_in_stream_is_pending(
    read_http: httpx.AsyncClient, redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    entry_id = await _accept(redis_client, stream_names, "cats", "v1")
    response = await read_http.get(f"/votes/{entry_id}")
    assert response.status_code == 200
    assert response.json() == {
        "id": entry_id,
        "state": "pending",
        "option": "cats",
        "accepted_at": "2023-11-14T22:13:20.123+00:00",
    }
    assert response.headers["cache-control"] == "no-store"


async def test_recorded_vote_is_current_then_superseded(
    read_http: httpx.AsyncClient,
    pg: asyncpg.Connection,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
) -> None:
    first = await _accept(redis_client, stream_names, "cats", "v1")
    await record_vote(pg, first, "cats", "v1")
    body = (await read_http.get(f"/votes/{first}")).json()
    assert (body["state"], body["ballot"], body["option"]) == ("recorded", "current", "cats")
    assert datetime.fromisoformat(body["recorded_at"]) >= datetime.fromisoformat(
        body["accepted_at"]
    )

    second = await _accept(redis_client, stream_names, "dogs", "v1")
    await record_vote(pg, second, "dogs", "v1")
    assert (await read_http.get(f"/votes/{first}")).json()["ballot"] == "superseded"
    assert (await read_http.get(f"/votes/{second}")).json()["ballot"] == "current"


@pytest.mark.parametrize("arrival", [("5-0", "5-1"), ("5-1", "5-0")])
async def test_in_one_millisecond_only_the_higher_sequence_is_current(
    read_http: httpx.AsyncClient, pg: asyncpg.Connection, arrival: tuple[str, str]
) -> None:
    cast = {"5-0": "cats", "5-1": "dogs"}
    for entry_id in arrival:
        await record_vote(pg, entry_id, cast[entry_id], "ann")
    assert (await read_http.get("/votes/5-1")).json()["ballot"] == "current"
    assert (await read_http.get("/votes/5-0")).json()["ballot"] == "superseded"


async def test_dead_lettered_vote_has_reason(
    read_http: httpx.AsyncClient, pg: asyncpg.Connection
) -> None:
    await pg.execute(
        "INSERT INTO dead_letters (entry_ms, entry_seq, reason, fields) VALUES ($1, $2, $3, $4)",
        1700000000999,
        3,
        "unknown option 'owls'",
        json.dumps({"option": "owls"}),
    )
    body = (await read_http.get("/votes/1700000000999-3")).json()
    assert body["state"] == "dead_lettered"
    assert body["reason"] == "unknown option 'owls'"
    assert "dead_at" in body


class RecordingBetweenReads(VoteStatusService):
    """Plays a Job that records the entry and trims it between the first DB read and XRANGE."""

    def __init__(self, conn: asyncpg.Connection, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.conn = conn
        self.raced = False

    async def _from_stream(self, vote_id: str) -> VoteStatus | None:
        await record_vote(self.conn, vote_id, "cats", "v1")
        await self._redis.xtrim(self._names.stream, minid=f"{split_id(vote_id)[0] + 1}-0")
        self.raced = True
        return await super()._from_stream(vote_id)


async def test_vote_recorded_and_trimmed_mid_lookup_is_not_404(
    pg: asyncpg.Connection,
    read_database_url: str,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
) -> None:
    entry_id = await _accept(redis_client, stream_names, "cats", "v1")
    database = Database(read_database_url)
    await database.open()
    try:
        service = RecordingBetweenReads(pg, database, redis_client, stream_names)
        status = await service.lookup(entry_id)
    finally:
        await database.close()
    assert service.raced
    assert status is not None
    assert status.state == "recorded"


async def test_status_without_postgres_is_503(read_settings: IngestSettings) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    async with read_client(dataclasses.replace(read_settings, database_url=dead)) as http:
        response = await http.get("/votes/1-0")
    assert response.status_code == 503
    assert "retry-after" in response.headers


@pytest.mark.usefixtures("pg")
async def test_status_without_redis_is_503_unless_in_postgres(
    read_settings: IngestSettings, pg: asyncpg.Connection
) -> None:
    await record_vote(pg, "7-0", "dogs", "v9")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with read_client(dataclasses.replace(read_settings, redis_url=dead)) as http:
        unknown = await http.get("/votes/8-0")
        recorded = await http.get("/votes/7-0")
    assert unknown.status_code == 503
    assert recorded.json()["state"] == "recorded"
