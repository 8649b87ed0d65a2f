"""PromQL as the chart's alerts and dashboard use it: the series they select, parsed with a
port of Prometheus' own parser, and the metric names each source exports (explicit lists)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import promql_parser

# What ingest's /metrics serves (tests/helm/test_monitoring.py checks this list against the
# registry of a real app).
PROJECT_METRICS = frozenset({
    "votes_accepted_total", "votes_rejected_total",
    "vote_write_batch_size_bucket", "vote_write_batch_size_count", "vote_write_batch_size_sum",
    "vote_request_seconds_bucket", "vote_request_seconds_count", "vote_request_seconds_sum",
    "vote_backlog",
    "vote_stream_length", "vote_pending_entries",
    "vote_oldest_pending_age_seconds", "vote_oldest_undelivered_age_seconds",
    "vote_events_inserted_total", "vote_dead_letters_inserted_total", "vote_ballots",
    "vote_newest_recorded_latency_seconds", "vote_newest_recorded_timestamp_seconds",
    "vote_pipeline_reading_up", "vote_pipeline_reading_age_seconds",
})  # fmt: skip
# KEDA v2.20.2's operator (pkg/metricscollector/prommetrics.go). There is no
# keda_scaler_errors_total any more, and for a ScaledJob a failed poll increments only
# keda_scaled_job_errors_total (scale_handler.go skips the per-scaler error counter then).
KEDA_METRICS = frozenset({
    "keda_build_info", "keda_scaler_metrics_value", "keda_scaler_metrics_latency_seconds",
    "keda_scaler_active", "keda_scaled_object_paused", "keda_scaler_detail_errors_total",
    "keda_scaled_object_errors_total", "keda_scaled_job_errors_total",
    "keda_scaler_empty_upstream_responses_total", "keda_trigger_registered_total",
    "keda_resource_registered_total", "keda_internal_scale_loop_latency_seconds",
    "keda_cloudeventsource_events_emitted_total", "keda_cloudeventsource_events_queued",
    "keda_scaler_http_requests_total", "keda_scaler_http_request_duration_seconds_bucket",
})  # fmt: skip
# kube-state-metrics (docs/metrics/workload/job-metrics.md and cronjob-metrics.md), the Job
# and CronJob series.
KUBE_STATE_METRICS = frozenset({
    "kube_job_info", "kube_job_owner", "kube_job_status_active", "kube_job_status_succeeded",
    "kube_job_status_failed", "kube_job_status_start_time", "kube_job_status_completion_time",
    "kube_job_complete", "kube_job_failed", "kube_job_created",
    "kube_cronjob_info", "kube_cronjob_created", "kube_cronjob_next_schedule_time",
    "kube_cronjob_status_active", "kube_cronjob_status_last_schedule_time",
    "kube_cronjob_status_last_successful_time", "kube_cronjob_spec_suspend",
})  # fmt: skip
KNOWN_METRICS = PROJECT_METRICS | KEDA_METRICS | KUBE_STATE_METRICS

# Grafana's variables, replaced by values of the right kind so that the parser sees PromQL.
_GRAFANA_INTERVAL = re.compile(r"\$__(rate_)?interval\b")
_GRAFANA_VARIABLE = re.compile(r"\$\{?(\w+)\}?")
_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$", re.DOTALL)


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: dict[str, str]  # equality matchers only
    regexes: dict[str, str] = field(default_factory=dict)  # =~ matchers

    def matches(self, label: str, value: str) -> bool:
        """Whether `label=value` passes this selector's matcher of `label` (anchored, as
        Prometheus anchors regex matchers)."""
        if label in self.labels:
            return self.labels[label] == value
        return re.fullmatch(self.regexes[label], value) is not None


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of `expr`; raises ValueError when it does not parse."""
    found: list[Selector] = []

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            labels = {
                m.name: m.value
                for m in node.matchers.matchers
                if m.op == promql_parser.MatchOp.Equal
            }
            regexes = {
                m.name: m.value for m in node.matchers.matchers if m.op == promql_parser.MatchOp.Re
            }
            found.append(Selector(node.name or labels.get("__name__", ""), labels, regexes))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def grafana_expr(text: str) -> str:
    """A dashboard query as PromQL: `label_values(selector, label)` gives its selector."""
    text = _GRAFANA_INTERVAL.sub("5m", text.strip())
    text = _GRAFANA_VARIABLE.sub(lambda m: f"var_{m[1]}", text)
    match = _LABEL_VALUES.match(text)
    if match:
        if match[1] is None:
            raise ValueError(f"label_values without a metric: {text}")
        return match[1]
    return text
