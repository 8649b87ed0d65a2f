"""Prometheus metrics of one app instance (own registry, so several apps can coexist): the
service's own, and the pipeline's (ingest/pipelinemetrics), read when /metrics is scraped."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
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


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        reg = self.registry
        self.accepted = Counter("votes_accepted", "Votes Redis confirmed (202)", registry=reg)
        self.rejected = Counter(
            "votes_rejected", "Votes refused, by reason", ["reason"], registry=reg
        )
        self._rejected_by_reason = {r: self.rejected.labels(r) for r in REJECT_REASONS}
        self.batch_size = Histogram(
            "vote_write_batch_size",
            "XADDs packed into one socket write",
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.latency = Histogram(
            "vote_request_seconds",
            "POST /vote handling time",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
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
