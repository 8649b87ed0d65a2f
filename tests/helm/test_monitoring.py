"""The chart's monitoring toggles, rendered by helm 3 and helm 4: the ServiceMonitor scrapes the
ingest Service, every alert parses, selects this release's objects by the names the chart gives
them, names only metrics that ingest, KEDA or kube-state-metrics export, and links its section of
docs/runbook.md; the Grafana dashboard ships as a ConfigMap and queries only exported metrics.
(The CRD-schema validation of these objects runs with every scenario in test_chart.py.)"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client.metrics_core import Metric

from ingest.metrics import IngestMetrics
from tests.support.helmchart import (
    CHART,
    NAMESPACE,
    RELEASE,
    ROOT,
    Manifest,
    find,
    render,
    run_helm,
    template,
)
from tests.support.prometheus_crds import prometheus_crd_validator
from tests.support.promql import (
    KNOWN_METRICS,
    PROJECT_METRICS,
    Selector,
    grafana_expr,
    selectors,
)

pytestmark = pytest.mark.helm

HELM_VERSIONS = ("3.17.2", "4.1.4")
ALL_ON = (
    *("--set", "monitoring.serviceMonitor.enabled=true"),
    *("--set", "monitoring.prometheusRule.enabled=true"),
    *("--set", "monitoring.dashboard.enabled=true"),
)
ALERTS = {
    "VotePipelineBacklogHigh", "VotePipelinePendingTooOld", "VotePipelineDeadLetters",
    "VotePipelineProcessorJobFailed", "VotePipelineKedaScalerErrors", "VotePipelineSweeperNotRun",
    "VotePipelineLatencyHigh", "VotePipelineStreamLong", "VotePipelineMetricsUnavailable",
    "VotePipelineStreamIdsBeyondBigint",
}  # fmt: skip
RUNBOOK = ROOT / "docs" / "runbook.md"
DASHBOARD = CHART / "dashboards" / "vote-pipeline.json"
# The longest release name Helm accepts: the chart truncates names, the alerts must follow.
LONG_RELEASE = "r" * 53


def rules(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    rule = find(manifests, "PrometheusRule")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def render_release(version: str, release: str, *args: str) -> list[Manifest]:
    result = run_helm(version, "template", release, str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def ingest_service(manifests: list[Manifest]) -> Manifest:
    (service,) = [
        doc
        for doc in manifests
        if doc["kind"] == "Service"
        and doc["metadata"]["labels"]["app.kubernetes.io/component"] == "ingest"
    ]
    return service


@pytest.fixture(scope="module", params=HELM_VERSIONS)
def monitored(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(request.param, *ALL_ON)


def test_monitoring_is_off_by_default() -> None:
    manifests = render(HELM_VERSIONS[0])
    assert not [doc for doc in manifests if doc["apiVersion"].startswith("monitoring.coreos")]
    assert not [doc for doc in manifests if "grafana_dashboard" in doc["metadata"]["labels"]]


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PrometheusRule"])
def test_the_crd_validators_reject_unknown_fields(monitored: list[Manifest], kind: str) -> None:
    manifest = find(monitored, kind)
    validator = prometheus_crd_validator(kind, manifest["apiVersion"])
    validator.validate(manifest)
    broken = copy.deepcopy(manifest)
    broken["spec"]["endpointz" if kind == "ServiceMonitor" else "groupz"] = []
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)
    if kind == "PrometheusRule":
        broken = copy.deepcopy(manifest)
        broken["spec"]["groups"][0]["rules"][0]["for"] = "10 minutes"
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


def test_the_service_monitor_scrapes_the_ingest_service(monitored: list[Manifest]) -> None:
    monitor = find(monitored, "ServiceMonitor")["spec"]
    service = ingest_service(monitored)
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    matched = [
        doc
        for doc in monitored
        if doc["kind"] == "Service"
        and monitor["selector"]["matchLabels"].items() <= doc["metadata"]["labels"].items()
    ]
    assert matched == [service]


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the runbook's headings (lowercase, spaces to dashes, no punctuation)."""
    headings = re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_has_a_runbook_section(monitored: list[Manifest]) -> None:
    alerts = rules(monitored)
    assert set(alerts) == ALERTS
    base = "https://github.com/vote-pipeline/vote-pipeline/blob/main/docs/runbook.md#"
    anchors = runbook_anchors()
    for name, rule in alerts.items():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(base), url
        assert url.removeprefix(base) in anchors, f"docs/runbook.md has no section for {name}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


@pytest.mark.parametrize("version", HELM_VERSIONS)
@pytest.mark.parametrize("release", [RELEASE, LONG_RELEASE])
def test_alerts_select_this_release_and_only_exported_metrics(version: str, release: str) -> None:
    manifests = render_release(version, release, *ALL_ON)
    names = {
        "job": ingest_service(manifests),
        "scaledJob": find(manifests, "ScaledJob"),
        "cronjob": find(manifests, "CronJob"),
    }
    expected = {key: doc["metadata"]["name"] for key, doc in names.items()}
    for name, rule in rules(manifests).items():
        for selector in selectors(rule["expr"]):
            assert selector.metric in KNOWN_METRICS, (name, selector.metric)
            assert selector.labels.get("namespace") == NAMESPACE, (name, selector)
            if selector.metric in PROJECT_METRICS:
                assert selector.labels["job"] == expected["job"], (name, selector)
            elif selector.metric.startswith("keda_"):
                assert selector.labels["scaledJob"] == expected["scaledJob"], (name, selector)
            elif selector.metric == "kube_job_owner":
                assert selector.labels["owner_kind"] == "ScaledJob"
                assert selector.labels["owner_name"] == expected["scaledJob"], (name, selector)
            elif selector.metric.startswith("kube_cronjob_"):
                assert selector.labels["cronjob"] == expected["cronjob"], (name, selector)


def test_thresholds_and_toggles_come_from_values() -> None:
    manifests = render(
        HELM_VERSIONS[0], *ALL_ON,
        *("--set", "monitoring.prometheusRule.backlogHigh.threshold=1234"),
        *("--set", "monitoring.prometheusRule.backlogHigh.for=3m"),
        *("--set", "monitoring.prometheusRule.latencyHigh.thresholdSeconds=45"),
        *("--set", "monitoring.prometheusRule.streamLong.enabled=false"),
        *("--set", "monitoring.prometheusRule.kedaNamespaceLabel=exported_namespace"),
        *("--set", "monitoring.prometheusRule.alertLabels.team=votes"),
        *("--set", "processor.sweeper.enabled=false"),
    )  # fmt: skip
    alerts = rules(manifests)
    assert set(alerts) == ALERTS - {"VotePipelineStreamLong", "VotePipelineSweeperNotRun"}
    backlog = alerts["VotePipelineBacklogHigh"]
    assert (backlog["expr"].endswith("> 1234"), backlog["for"]) == (True, "3m")
    assert "> 45" in alerts["VotePipelineLatencyHigh"]["expr"]
    keda = selectors(alerts["VotePipelineKedaScalerErrors"]["expr"])
    assert keda[0].labels["exported_namespace"] == NAMESPACE
    assert {rule["labels"]["team"] for rule in alerts.values()} == {"votes"}


SCHEMA_ERRORS = {
    "duration": ("monitoring.prometheusRule.backlogHigh.for=10 minutes", "for"),
    "unknown alert": ("monitoring.prometheusRule.backlogHgh.enabled=true", "backlogHgh"),
    "anchor in url": ("monitoring.prometheusRule.runbookUrl=https://x/r.md#a", "runbookUrl"),
    "label name": ("monitoring.prometheusRule.kedaNamespaceLabel=exported-namespace", "Label"),
}


@pytest.mark.parametrize("case", SCHEMA_ERRORS)
def test_the_schema_rejects_bad_monitoring_values(case: str) -> None:
    value, where = SCHEMA_ERRORS[case]
    result = template(HELM_VERSIONS[0], "--set", value)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert where in result.stderr


def exported_sample_names(family: Metric) -> set[str]:
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    return {family.name + suffix for suffix in suffixes.get(family.type, ("",))}


def test_the_project_metric_list_is_what_ingest_exports() -> None:
    registry = IngestMetrics().registry
    exported = set().union(*(exported_sample_names(f) for f in registry.collect()))
    assert exported == PROJECT_METRICS


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    panels = [p for row in dashboard["panels"] for p in (row, *row.get("panels", []))]
    queries = [t["expr"] for p in panels for t in p.get("targets", [])]
    variables = dashboard["templating"]["list"]
    queries += [v["query"]["query"] for v in variables if v["type"] == "query"]
    return queries


def test_the_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries(dashboard)
    used = {s.metric for query in queries for s in selectors(grafana_expr(query))}
    assert used <= KNOWN_METRICS, used - KNOWN_METRICS
    # accepted and recorded rates, lag, pending, Jobs running, end-to-end latency, dead letters
    assert {
        "votes_accepted_total", "vote_events_inserted_total", "vote_backlog",
        "vote_pending_entries", "kube_job_status_active", "vote_newest_recorded_latency_seconds",
        "vote_dead_letters_inserted_total",
    } <= used  # fmt: skip
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_dashboard_ships_as_a_configmap_for_grafana(monitored: list[Manifest]) -> None:
    (configmap,) = [
        doc for doc in monitored if doc["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert configmap["kind"] == "ConfigMap"
    assert json.loads(configmap["data"]["vote-pipeline.json"]) == json.loads(DASHBOARD.read_text())
    other = render(HELM_VERSIONS[0], *ALL_ON, "--set", "monitoring.dashboard.namespace=grafana")
    assert find(other, "ConfigMap", configmap["metadata"]["name"])["metadata"]["namespace"] == (
        "grafana"
    )


# The label naming each shard's object, per metric family the alerts and the dashboard read.
SHARD_LABELS = {
    "keda_scaled_job_errors_total": "scaledJob", "keda_scaler_metrics_value": "scaledObject",
    "kube_job_owner": "owner_name", "kube_cronjob_status_last_successful_time": "cronjob",
    "kube_cronjob_created": "cronjob",
}  # fmt: skip


def shard_names(manifests: list[Manifest]) -> dict[str, list[str]]:
    """label -> the rendered objects it names: every shard's ScaledJob or sweeper CronJob."""
    jobs = [d["metadata"]["name"] for d in manifests if d["kind"] == "ScaledJob"]
    sweepers = [d["metadata"]["name"] for d in manifests if d["kind"] == "CronJob"]
    return {"scaledJob": jobs, "scaledObject": jobs, "owner_name": jobs, "cronjob": sweepers}


def covers(selector: Selector, label: str, names: dict[str, list[str]]) -> bool:
    """The selector takes every shard's object of its kind and none of the other kind's."""
    other = names["cronjob"] if label != "cronjob" else names["scaledJob"]
    return all(selector.matches(label, n) for n in names[label]) and not any(
        selector.matches(label, n) for n in other
    )


@pytest.mark.parametrize("release", [RELEASE, LONG_RELEASE])
def test_with_shards_every_alert_covers_every_shards_objects(release: str) -> None:
    manifests = render_release(HELM_VERSIONS[0], release, *ALL_ON, "--set", "config.voteShards=3")
    names = shard_names(manifests)
    assert len(names["scaledJob"]) == len(names["cronjob"]) == 3
    for name, rule in rules(manifests).items():
        for selector in selectors(rule["expr"]):
            label = SHARD_LABELS.get(selector.metric)
            if label is not None:
                assert covers(selector, label, names), (name, selector)


def grafana_all(variable: dict[str, Any], values: list[str]) -> str:
    """What Grafana puts in a query for a variable set to All: a regex alternation of every
    value its query finds that passes the variable's regex."""
    assert variable["multi"], variable["name"]
    assert variable["includeAll"], variable["name"]
    regex = variable["regex"].strip("/")
    return "(" + "|".join(re.escape(v) for v in values if re.fullmatch(regex or ".*", v)) + ")"


def test_with_shards_the_dashboard_shows_every_shard() -> None:
    """Each shard's ScaledJob and sweeper is one series of the Job, KEDA and sweeper panels,
    with the ScaledJob and sweeper variables at All (their default)."""
    manifests = render(HELM_VERSIONS[0], *ALL_ON, "--set", "config.voteShards=3")
    names = shard_names(manifests)
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    values = {  # the ScaledJobs KEDA reports; every CronJob of the namespace
        "scaledjob": grafana_all(variables["scaledjob"], names["scaledJob"]),
        "sweeper": grafana_all(variables["sweeper"], [*names["cronjob"], "nightly-backup"]),
    }
    shard_queries = 0
    for query in dashboard_queries(dashboard):
        if "$scaledjob" not in query and "$sweeper" not in query:
            continue
        shard_queries += 1
        text = query.replace('"$scaledjob"', json.dumps(values["scaledjob"]))
        text = text.replace('"$sweeper"', json.dumps(values["sweeper"]))
        expr = grafana_expr(text)
        for selector in selectors(expr):
            label = SHARD_LABELS.get(selector.metric)
            if label is not None:
                assert covers(selector, label, names), (query, selector)
        if not query.startswith("label_values"):
            assert re.search(r"\bby \((owner_name|scaledObject|scaledJob|cronjob)\)", query), query
    assert shard_queries == 5
