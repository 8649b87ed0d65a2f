"""The pipeline readings as Prometheus metric families (each documented in docs/monitoring.md).

Values are those of the last successful reading of their source, never made up: a source that
never answered has no samples, and `vote_pipeline_reading_age_seconds{source}` says how old the
served values are. Every ingest pod serves the same figures: aggregate them with max(), not
sum().
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.pipelinemetrics.database import DatabaseReading
from ingest.pipelinemetrics.monitor import PipelineMonitor
from ingest.pipelinemetrics.stream import StreamReading

EMPTY_STREAM = StreamReading(0, 0, 0.0, 0.0)


class PipelineCollector(Collector):
    """Collects from `monitor` while one is attached (the app's lifespan attaches it)."""

    def __init__(self) -> None:
        self.monitor: PipelineMonitor | None = None

    def describe(self) -> list[Metric]:
        return list(self._families(None))

    def collect(self) -> list[Metric]:
        return list(self._families(self.monitor))

    def _families(self, monitor: PipelineMonitor | None) -> Iterator[Metric]:
        stream = database = None
        if monitor is not None and monitor.stream.read_at is not None:
            stream = monitor.stream.value or EMPTY_STREAM  # None: no stream yet, nothing in it
        if monitor is not None:
            database = monitor.database.value
        yield from _stream_families(stream)
        yield from _database_families(database)
        yield from _reading_families(monitor)


# name, help, value of a reading (None: no sample)
STREAM_GAUGES: tuple[tuple[str, str, Callable[[StreamReading], float]], ...] = (
    (
        "vote_stream_length",
        "Entries in the vote stream (XLEN): undelivered, pending and recorded-but-untrimmed",
        lambda r: r.length,
    ),
    (
        "vote_pending_entries",
        "Entries delivered to a processor Job and not yet acknowledged (XPENDING)",
        lambda r: r.pending,
    ),
    (
        "vote_oldest_pending_age_seconds",
        "Age (since accepted) of the oldest entry delivered but not acknowledged; 0: none",
        lambda r: r.oldest_pending_age_s,
    ),
    (
        "vote_oldest_undelivered_age_seconds",
        "Age (since accepted) of the oldest entry no Job has read yet; 0: none",
        lambda r: r.oldest_undelivered_age_s,
    ),
)
DATABASE_COUNTERS: tuple[tuple[str, str, Callable[[DatabaseReading], float]], ...] = (
    (
        "vote_events_inserted",
        "Rows inserted into vote_events (votes recorded) per PostgreSQL's statistics",
        lambda r: r.events_inserted,
    ),
    (
        "vote_dead_letters_inserted",
        "Rows inserted into dead_letters per PostgreSQL's statistics",
        lambda r: r.dead_letters_inserted,
    ),
)
DATABASE_GAUGES: tuple[tuple[str, str, Callable[[DatabaseReading], float | None]], ...] = (
    (
        "vote_ballots",
        "Ballots counted in the tally (one per voter): the total /results shows",
        lambda r: r.ballots,
    ),
    (
        "vote_newest_recorded_latency_seconds",
        "Accepted-to-recorded time of the recorded vote with the highest stream ID",
        lambda r: r.newest.latency_s if r.newest else None,
    ),
    (
        "vote_newest_recorded_timestamp_seconds",
        "When the recorded vote with the highest stream ID was recorded (Unix time)",
        lambda r: r.newest.recorded_at.timestamp() if r.newest else None,
    ),
)


def _stream_families(reading: StreamReading | None) -> Iterator[Metric]:
    for name, documentation, value in STREAM_GAUGES:
        family = GaugeMetricFamily(name, documentation)
        if reading is not None:
            family.add_metric([], value(reading))
        yield family


def _database_families(reading: DatabaseReading | None) -> Iterator[Metric]:
    for name, documentation, count in DATABASE_COUNTERS:
        counter = CounterMetricFamily(name, documentation)
        if reading is not None:
            counter.add_metric([], count(reading))
        yield counter
    for name, documentation, optional in DATABASE_GAUGES:
        gauge = GaugeMetricFamily(name, documentation)
        figure = optional(reading) if reading is not None else None
        if figure is not None:
            gauge.add_metric([], figure)
        yield gauge


def _reading_families(monitor: PipelineMonitor | None) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "vote_pipeline_reading_up",
        "1 when the last read of the source (redis, postgres) succeeded",
        labels=["source"],
    )
    age = GaugeMetricFamily(
        "vote_pipeline_reading_age_seconds",
        "Age of the served values of the source (redis, postgres)",
        labels=["source"],
    )
    for reading in monitor.readings if monitor is not None else ():
        if reading.attempted_at is not None:
            up.add_metric([reading.source], 1.0 if reading.up else 0.0)
        reading_age = reading.age_s()
        if reading_age is not None:
            age.add_metric([reading.source], reading_age)
    yield up
    yield age
