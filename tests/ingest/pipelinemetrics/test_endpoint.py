"""The pipeline metrics on /metrics with the real Redis and PostgreSQL: the figures, and what a
scrape serves while a server stalls or is gone (the last values, marked down, with their age)."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace

import asyncpg
import httpx
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from ingest.settings import IngestSettings
from tests.support.ingest_app import make_settings, running_app
from tests.support.servers import ThrowawayRedis, free_port
from votecontract.names import StreamNames

Samples = dict[str, float]
STREAM_GAUGES = (
    "vote_stream_length",
    "vote_pending_entries",
    "vote_oldest_pending_age_seconds",
    "vote_oldest_undelivered_age_seconds",
)
DATABASE_SERIES = (
    "vote_events_inserted_total",
    "vote_dead_letters_inserted_total",
    "vote_ballots",
)


async def scrape(http: httpx.AsyncClient) -> Samples:
    """Every sample of /metrics by name, labels written out `name{k="v"}`."""
    response = await http.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def up(source: str) -> str:
    return f'vote_pipeline_reading_up{{source="{source}"}}'


def age(source: str) -> str:
    return f'vote_pipeline_reading_age_seconds{{source="{source}"}}'


def fresh_every_scrape(settings: IngestSettings) -> IngestSettings:
    return replace(settings, pipeline_metrics_max_age_s=1e-9, pipeline_metrics_timeout_s=0.5)


async def test_the_stream_and_the_database_as_of_the_scrape(
    redis_url: str,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
    database_url: str,
    db: asyncpg.Connection,
) -> None:
    settings = make_settings(redis_url, stream_names, database_url=database_url)
    async with running_app(settings) as (_, http):
        first = (await http.post("/vote", json={"option": "cats"})).json()["id"]
        second = (await http.post("/vote", json={"option": "dogs"})).json()["id"]
        await redis_client.xreadgroup(stream_names.group, "job", {stream_names.stream: ">"}, 1)
        await db.execute(
            "INSERT INTO vote_events (entry_ms, entry_seq, option, voter_id, accepted_at,"
            " recorded_at) VALUES (1, 0, 'cats', 'ann', 'epoch', timestamptz 'epoch' + '2 s')"
        )
        before = time.time()
        samples = await scrape(http)
        after = time.time()
    # Ages are whole milliseconds, from the scrape's clock truncated to the millisecond.
    for entry_id, series in ((first, "pending"), (second, "undelivered")):
        entry_ms = int(entry_id.split("-")[0])
        age_ms = round(samples[f"vote_oldest_{series}_age_seconds"] * 1000)
        assert math.floor(before * 1000) - entry_ms <= age_ms <= math.ceil(after * 1000) - entry_ms
    assert (samples["vote_stream_length"], samples["vote_pending_entries"]) == (2, 1)
    assert samples["vote_newest_recorded_latency_seconds"] == 2.0
    assert samples["vote_newest_recorded_timestamp_seconds"] == 2.0
    assert {name: samples[name] for name in (up("redis"), up("postgres"))} == {
        up("redis"): 1,
        up("postgres"): 1,
    }
    assert {age("redis"), age("postgres"), *DATABASE_SERIES} <= set(samples)


async def test_readings_younger_than_the_max_age_are_not_read_again(
    redis_url: str, redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    settings = make_settings(redis_url, stream_names, pipeline_metrics_max_age_s=3600)
    async with running_app(settings) as (_, http):
        await http.post("/vote", json={"option": "cats"})
        first = await scrape(http)
        await http.post("/vote", json={"option": "cats"})
        second = await scrape(http)
    assert first["vote_stream_length"] == second["vote_stream_length"] == 1
    assert await redis_client.xlen(stream_names.stream) == 2


@contextmanager
def stopped(server: ThrowawayRedis) -> Iterator[None]:
    """The server frozen (SIGSTOP): connections open, nothing answers."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def test_a_stalled_redis_serves_the_last_values(
    throwaway_redis: ThrowawayRedis, stream_names: StreamNames
) -> None:
    settings = fresh_every_scrape(make_settings(throwaway_redis.url, stream_names))
    async with running_app(settings) as (_, http):
        await http.post("/vote", json={"option": "cats"})
        before = await scrape(http)
        with stopped(throwaway_redis):
            during = await scrape(http)
        after = await scrape(http)
    assert (before[up("redis")], during[up("redis")], after[up("redis")]) == (1, 0, 1)
    for name in STREAM_GAUGES[:2]:
        assert during[name] == before[name], name
    assert during[age("redis")] >= 0


@asynccontextmanager
async def locked_tally(url: str) -> AsyncIterator[None]:
    """Another session holds an exclusive lock on `tally`: reading it waits."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE tally IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def test_a_stalled_postgres_serves_the_last_values(
    redis_url: str, stream_names: StreamNames, database_url: str, db: asyncpg.Connection
) -> None:
    settings = make_settings(redis_url, stream_names, database_url=database_url)
    async with running_app(fresh_every_scrape(settings)) as (_, http):
        before = await scrape(http)
        async with locked_tally(database_url):
            during = await scrape(http)
        after = await scrape(http)
    assert (before[up("postgres")], during[up("postgres")], after[up("postgres")]) == (1, 0, 1)
    for name in DATABASE_SERIES:
        assert during[name] == before[name], name
    assert during[up("redis")] == 1


async def test_servers_never_reached_give_no_values(stream_names: StreamNames) -> None:
    settings = make_settings(f"redis://127.0.0.1:{free_port()}/0", stream_names)
    async with running_app(fresh_every_scrape(settings)) as (_, http):
        samples = await scrape(http)
    assert (samples[up("redis")], samples[up("postgres")]) == (0, 0)
    pipeline = (*STREAM_GAUGES, *DATABASE_SERIES, age("redis"), age("postgres"))
    assert not set(pipeline) & set(samples)
