from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from ingest.readside.database import Database, DatabaseUnavailableError
from ingest.readside.results import ResultsService, build_results, unrecorded_votes
from ingest.settings import IngestSettings
from tests.support.polling import eventually
from tests.support.readside import OPTIONS, read_client, record_vote
from tests.support.servers import free_port
from votecontract.names import StreamNames

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class CountingDatabase(Database):
    """The real pool, counting the queries that reach Postgres."""

    queries = 0

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        self.queries += 1
        await asyncio.sleep(0.05)  # hold the query open so concurrent callers overlap
        return await super().fetch(query, *args)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def database(read_database_url: str) -> AsyncIterator[CountingDatabase]:
    db = CountingDatabase(read_database_url)
    await db.open()
    yield db
    await db.close()


def test_build_results_lists_configured_options_first_with_zeros() -> None:
    results = build_results(("cats", "dogs", "fish"), {"dogs": 3, "owls": 1}, 2, NOW)
    assert [(o.option, o.votes, o.share) for o in results.options] == [
        ("cats", 0, 0.0),
        ("dogs", 3, 0.75),
        ("fish", 0, 0.0),
        ("owls", 1, 0.25),
    ]
    assert results.total == 4
    assert results.to_json()["as_of"] == "2026-01-01T00:00:00.000+00:00"


def test_build_results_on_no_votes_has_zero_shares() -> None:
    results = build_results(OPTIONS, {}, 0, NOW)
    assert results.total == 0
    assert {o.share for o in results.options} == {0.0}


@pytest.mark.usefixtures("pg")
async def test_get_results_on_empty_database_is_all_zeros(read_http: httpx.AsyncClient) -> None:
    response = await read_http.get("/results")
    assert response.status_code == 200
    body = response.json()
    assert body["options"] == [
        {"option": "cats", "votes": 0, "share": 0.0},
        {"option": "dogs", "votes": 0, "share": 0.0},
    ]
    assert (body["total"], body["backlog"]) == (0, 0)
    assert datetime.fromisoformat(body["as_of"]).tzinfo is not None
    assert "max-age=1" in response.headers["cache-control"]


async def test_get_results_counts_tally_and_backlog(
    read_http: httpx.AsyncClient,
    pg: asyncpg.Connection,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
) -> None:
    await record_vote(pg, "1-0", "cats", "v1")
    await record_vote(pg, "2-0", "dogs", "v2")
    await record_vote(pg, "3-0", "dogs", "v3")
    # the app created the group at start (XGROUP CREATE ... 0 MKSTREAM)
    for _ in range(3):
        await redis_client.xadd(stream_names.stream, {"option": "cats"})
    await redis_client.xreadgroup(stream_names.group, "c1", {stream_names.stream: ">"}, count=1)

    body = (await read_http.get("/results")).json()
    assert [(o["option"], o["votes"], o["share"]) for o in body["options"]] == [
        ("cats", 1, 0.3333),
        ("dogs", 2, 0.6667),
    ]
    assert body["total"] == 3
    assert body["backlog"] == 3  # two never delivered + one delivered, not acked


@pytest.mark.usefixtures("pg")
async def test_results_are_cached_for_max_age(
    database: CountingDatabase, redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    clock = Clock()
    service = ResultsService(database, redis_client, stream_names, OPTIONS, clock=clock)
    first = await service.current()
    clock.now += 0.9
    assert await service.current() is first
    clock.now += 0.2
    assert await service.current() is not first
    assert database.queries == 2


@pytest.mark.usefixtures("pg")
async def test_results_refresh_ahead_in_the_background(
    database: CountingDatabase, redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    clock = Clock()
    service = ResultsService(database, redis_client, stream_names, OPTIONS, clock=clock)
    first = await service.current()
    clock.now += 0.6
    assert await service.current() is first  # answered at once; a refresh started

    async def refreshed() -> bool:
        return database.queries == 2 and service._refresh is None

    await eventually(refreshed, "the background refresh finished")
    second = await service.current()
    assert second is not first
    assert database.queries == 2
    await service.close()


@pytest.mark.usefixtures("pg")
async def test_concurrent_cache_misses_share_one_query(
    database: CountingDatabase, redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    service = ResultsService(database, redis_client, stream_names, OPTIONS)
    results = await asyncio.gather(*(service.current() for _ in range(50)))
    assert database.queries == 1
    assert all(r is results[0] for r in results)


@pytest.mark.usefixtures("pg")
async def test_results_change_after_cache_expiry(
    database: CountingDatabase,
    pg: asyncpg.Connection,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
) -> None:
    clock = Clock()
    service = ResultsService(database, redis_client, stream_names, OPTIONS, clock=clock)
    assert (await service.current()).total == 0
    await record_vote(pg, "5-1", "cats", "v1")
    assert (await service.current()).total == 0
    clock.now += 1.0
    assert (await service.current()).total == 1


async def test_results_without_postgres_is_503(read_settings: IngestSettings) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    settings = dataclasses.replace(read_settings, database_url=dead)
    async with read_client(settings) as http:
        response = await http.get("/results")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "database_unavailable"


@pytest.mark.usefixtures("pg")
async def test_results_without_redis_have_unknown_backlog(read_settings: IngestSettings) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = dataclasses.replace(read_settings, redis_url=dead)
    async with read_client(settings) as http:
        response = await http.get("/results")
    assert response.status_code == 200
    assert response.json()["backlog"] is None


async def test_database_unavailable_when_pool_not_open(read_database_url: str) -> None:
    with pytest.raises(DatabaseUnavailableError):
        await Database(read_database_url).fetch("SELECT 1")


async def test_backlog_without_stream_is_zero(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    assert await unrecorded_votes(redis_client, stream_names) == 0


async def test_backlog_without_group_is_stream_length(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    for _ in range(4):
        await redis_client.xadd(stream_names.stream, {"option": "cats"})
    assert await unrecorded_votes(redis_client, stream_names) == 4


async def test_backlog_with_unknown_lag_falls_back_to_length(
    redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    ids = [await redis_client.xadd(stream_names.stream, {"option": "cats"}) for _ in range(3)]
    await redis_client.xgroup_create(stream_names.stream, stream_names.group, "0")
    await redis_client.xdel(stream_names.stream, ids[1])  # makes Redis report lag as nil
    groups = await redis_client.xinfo_groups(stream_names.stream)
    assert groups[0]["lag"] is None
    assert await unrecorded_votes(redis_client, stream_names) == 2
