"""The pipeline readings behind /metrics, refreshed when scraped: readings younger than the max
age are served as they are, older ones are read again (both sources at once), and any number of
concurrent scrapes share the one refresh in flight. A scrape waits at most the timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from ingest.pipelinemetrics.database import DatabaseReading, read_database
from ingest.pipelinemetrics.reading import Reading
from ingest.pipelinemetrics.stream import StreamReading, combined, read_stream
from ingest.readside.database import Database
from ingest.redisclients import AnyRedis
from ingest.settings import IngestSettings

STREAM = "redis"
DATABASE = "postgres"


class PipelineMonitor:
    def __init__(
        self,
        stream: Reading[StreamReading | None],
        database: Reading[DatabaseReading],
        max_age_s: float,
        timeout_s: float,
    ) -> None:
        self.stream = stream
        self.database = database
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._task: asyncio.Task[None] | None = None

    @property
    def readings(self) -> tuple[Reading[Any], ...]:
        return (self.stream, self.database)

    async def refresh(self) -> None:
        """Bring the readings that are due up to date (at most `timeout_s`)."""
        if self._task is None or self._task.done():
            due = [reading for reading in self.readings if reading.due(self._max_age_s)]
            if not due:
                return
            self._task = asyncio.create_task(self._refresh(due), name="pipeline-metrics")
        # Shielded: a scrape that goes away does not cancel the refresh other scrapes share.
        await asyncio.shield(self._task)

    async def _refresh(self, due: Sequence[Reading[Any]]) -> None:
        await asyncio.gather(*(reading.refresh(self._timeout_s) for reading in due))

    async def aclose(self) -> None:
        """Let a refresh in flight end (it is bounded by the timeout)."""
        if self._task is not None:
            await self._task


def pipeline_monitor(
    settings: IngestSettings, redis: AnyRedis, database: Database
) -> PipelineMonitor:
    """The monitor of this app's streams (every shard's), group and database."""

    async def stream() -> StreamReading | None:
        now_ms = time.time_ns() // 1_000_000
        shards = settings.topology.streams(settings.names)
        return combined([await read_stream(redis, names, now_ms) for names in shards])

    async def tables() -> DatabaseReading:
        return await read_database(database)

    return PipelineMonitor(
        Reading(STREAM, stream),
        Reading(DATABASE, tables),
        settings.pipeline_metrics_max_age_s,
        settings.pipeline_metrics_timeout_s,
    )
