"""The lock-free per-vote metrics expose what prometheus_client's Histogram would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from ingest.metrics import LATENCY_BUCKETS, Distribution, IngestMetrics


def samples(text: bytes, prefix: str) -> dict[str, str]:
    lines = [line for line in text.decode().splitlines() if line.startswith(prefix)]
    return dict(line.rpartition(" ")[::2] for line in lines)


def test_a_distribution_matches_a_prometheus_histogram_bucket_for_bucket() -> None:
    values = [0.0, 0.0005, 0.00051, 0.003, 1, 5, 7.5]  # on, just past and beyond the bounds
    metrics, registry = IngestMetrics(), CollectorRegistry()
    reference = Histogram("vote_request_seconds", "x", buckets=LATENCY_BUCKETS, registry=registry)
    for value in values:
        metrics.latency.observe(value)
        reference.observe(value)
    ours = samples(generate_latest(metrics.registry), "vote_request_seconds_")
    theirs = samples(generate_latest(registry), "vote_request_seconds_")
    theirs.pop("vote_request_seconds_created")
    assert ours == theirs


def test_values_past_the_last_bound_count_only_in_inf() -> None:
    hist = Distribution((1, 2))
    hist.observe(3)
    assert hist.cumulative() == [("1.0", 0), ("2.0", 0), ("+Inf", 1)]
    assert hist.total == 3
