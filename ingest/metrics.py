"""Prometheus metrics of one app instance (own registry, so several apps can coexist): the
service's own, and the pipeline's (ingest/pipelinemetrics), read when /metrics is scraped.

The per-vote counters (accepted, request latency, write batch size) are plain integers read
by a collector at scrape time: prometheus_client's Counter and Histogram take a lock on each
update, and `Histogram.observe` cost more than parsing the vote's JSON (measured with timeit).
The app runs on one event loop thread, so nothing else updates them concurrently.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from ingest.pipelinemetrics.collector import PipelineCollector

REJECT_REASONS = (
    "malformed_json",
    "malformed_form",
    "missing_field",
    "invalid_option",
    "invalid_voter_id",
    "unsupported_media_type",
    "body_too_large",
    "method_not_allowed",
    "client_disconnected",
    "backlog_full",
    "redis_unavailable",
    "stream_id_out_of_range",
    "durability_unverified",
    "not_replicated",
)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Tally:
    """A counter without a lock: `inc()` adds one."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1


class Distribution:
    """A histogram without a lock: one bisect and two additions per observation."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total: float = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        buckets, running = [], 0
        for bound, count in zip((*map(float, self.bounds), float("inf")), self.counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return buckets


@dataclass(frozen=True)
class _HotMetrics(Collector):
    accepted: Tally
    latency: Distribution
    batch_size: Distribution

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "votes_accepted", "Votes Redis confirmed (202)", value=self.accepted.value
        )
        for name, doc, hist in (
            ("vote_write_batch_size", "XADDs packed into one socket write", self.batch_size),
            ("vote_request_seconds", "POST /vote handling time", self.latency),
        ):
            yield HistogramMetricFamily(name, doc, buckets=hist.cumulative(), sum_value=hist.total)


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        reg = self.registry
        self.accepted = Tally()
        self.batch_size = Distribution(BATCH_BUCKETS)
        self.latency = Distribution(LATENCY_BUCKETS)
        reg.register(_HotMetrics(self.accepted, self.latency, self.batch_size))
        self.rejected = Counter(
            "votes_rejected", "Votes refused, by reason", ["reason"], registry=reg
        )
        self._rejected_by_reason = {r: self.rejected.labels(r) for r in REJECT_REASONS}
        self.backlog = Gauge(
            "vote_backlog", "Entries not yet delivered to the consumer group", registry=reg
        )
        self.pipeline = PipelineCollector()
        reg.register(self.pipeline)

    def reject(self, reason: str) -> None:
        child = self._rejected_by_reason.get(reason)
        if child is None:
            child = self._rejected_by_reason[reason] = self.rejected.labels(reason)
        child.inc()


async def metrics_endpoint(request: Request) -> Response:
    metrics: IngestMetrics = request.app.state.metrics
    monitor = metrics.pipeline.monitor
    if monitor is not None:
        await monitor.refresh()
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
