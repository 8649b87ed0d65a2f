"""Refreshing the pipeline readings (unit tests, fake sources and a fake clock): at most one read
per max age, one read shared by concurrent scrapes, failures keep the last values."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from ingest.pipelinemetrics.database import DatabaseReading
from ingest.pipelinemetrics.monitor import PipelineMonitor
from ingest.pipelinemetrics.reading import Reading
from ingest.pipelinemetrics.stream import StreamReading


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Source:
    """Returns the next of `values` per read (an exception is raised); `gate` holds reads."""

    def __init__(self, *values: object) -> None:
        self.values = list(values)
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> object:
        self.reads += 1
        await self.gate.wait()
        value = self.values.pop(0)
        if isinstance(value, Exception):
            raise value
        return value


STREAM = StreamReading(5, 1, 2.0, 3.0)
TABLES = DatabaseReading(10, 0, 7, None)


def monitor(stream: Source, tables: Source, clock: Clock, timeout_s: float = 5) -> PipelineMonitor:
    return PipelineMonitor(
        Reading("redis", stream, clock),  # type: ignore[arg-type]
        Reading("postgres", tables, clock),  # type: ignore[arg-type]
        max_age_s=5,
        timeout_s=timeout_s,
    )


async def test_readings_are_read_again_only_once_older_than_the_max_age() -> None:
    clock, stream, tables = Clock(), Source(STREAM, STREAM), Source(TABLES, TABLES)
    pipeline = monitor(stream, tables, clock)
    await pipeline.refresh()
    clock.now += 4.9
    await pipeline.refresh()
    assert (stream.reads, tables.reads) == (1, 1)
    assert pipeline.stream.age_s() == pytest.approx(4.9)
    clock.now += 0.1
    await pipeline.refresh()
    assert (stream.reads, tables.reads) == (2, 2)
    assert pipeline.stream.age_s() == 0


async def test_concurrent_scrapes_share_one_read() -> None:
    clock, stream, tables = Clock(), Source(STREAM), Source(TABLES)
    stream.gate.clear()
    pipeline = monitor(stream, tables, clock)
    scrapes = [asyncio.create_task(pipeline.refresh()) for _ in range(5)]
    await asyncio.sleep(0)
    scrapes[0].cancel()  # a scraper that goes away cancels nothing of the others'
    stream.gate.set()
    await asyncio.gather(*scrapes[1:])
    assert (stream.reads, tables.reads) == (1, 1)
    assert (pipeline.stream.value, pipeline.database.value) == (STREAM, TABLES)


async def test_a_failed_read_keeps_the_last_values_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    stream = Source(STREAM, RedisConnectionError("gone"), StreamReading(0, 0, 0.0, 0.0))
    tables = Source(TABLES, TABLES, TABLES)
    pipeline = monitor(stream, tables, clock)
    await pipeline.refresh()
    clock.now += 5
    with caplog.at_level(logging.WARNING):
        await pipeline.refresh()
    assert (pipeline.stream.up, pipeline.stream.value) == (False, STREAM)
    assert pipeline.stream.age_s() == 5
    assert pipeline.database.up
    assert [record.source for record in caplog.records] == ["redis"]  # type: ignore[attr-defined]
    clock.now += 5
    await pipeline.refresh()
    assert (pipeline.stream.up, pipeline.stream.value) == (True, StreamReading(0, 0, 0.0, 0.0))


async def test_a_read_that_hangs_ends_at_the_timeout() -> None:
    clock, stream, tables = Clock(), Source(STREAM), Source(TABLES)
    stream.gate.clear()  # never opened: Redis stalls
    pipeline = monitor(stream, tables, clock, timeout_s=0.01)
    await pipeline.refresh()
    assert not pipeline.stream.up
    assert pipeline.stream.age_s() is None
    assert pipeline.database.value == TABLES
