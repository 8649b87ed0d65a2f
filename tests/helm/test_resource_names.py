"""Every release name Helm accepts (at most 53 characters, dots and leading digits allowed)
renders names Kubernetes accepts: DNS labels of at most 63 characters, Service names starting
with a letter, CronJob names of at most 52 (the controller appends an 11-character suffix to
its Jobs' names) and StatefulSet names of at most 52 (its controller-revision-hash label is the
name plus an 11-character suffix); label values of at most 63 characters; and every name one
manifest refers to is one the rendering defines (helm 3 and helm 4)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.helmchart import HELM_VERSIONS, Manifest, render, template, values_args

pytestmark = pytest.mark.helm

LONGEST = 53  # Helm's limit on release names (both versions refuse one more, below)
RELEASES = (
    "r" + "a" * (LONGEST - 1),
    "1" + "b" * (LONGEST - 1),
    "dotted." + "c" * (LONGEST - 7),
    "vote-pipeline-" + "d" * (LONGEST - 14),
)
# Everything optional switched on: every kind of resource the chart can render.
EVERYTHING = (
    *("--set", "ingress.enabled=true", "--set", "networkPolicy.enabled=true"),
    *("--set", "ingest.autoscaling.enabled=true", "--set", "serviceAccount.create=true"),
    *("--set", "monitoring.serviceMonitor.enabled=true"),
    *("--set", "monitoring.prometheusRule.enabled=true"),
    *("--set", "monitoring.dashboard.enabled=true"),
)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
MAX_NAME = {"CronJob": 52, "StatefulSet": 52}


def label_maps(node: Any) -> Iterator[dict[str, str]]:
    """Every map of labels in a manifest: labels, selectors, pod templates, policies."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("labels", "matchLabels") and isinstance(value, dict):
                yield value
            else:
                yield from label_maps(value)
    elif isinstance(node, list):
        for item in node:
            yield from label_maps(item)


def references(node: Any) -> Iterator[tuple[str, str]]:
    """(kind, name) of the objects a manifest refers to by name."""
    if isinstance(node, dict):
        for key, kind in (("secretKeyRef", "Secret"), ("configMapRef", "ConfigMap")):
            if key in node:
                yield kind, node[key]["name"]
        if "secret" in node and "secretName" in node["secret"]:
            yield "Secret", node["secret"]["secretName"]
        if "configMap" in node and "name" in node["configMap"]:
            yield "ConfigMap", node["configMap"]["name"]
        if "service" in node and "name" in node["service"]:
            yield "Service", node["service"]["name"]
        if "serviceName" in node:
            yield "Service", node["serviceName"]
        if "authenticationRef" in node:
            yield "TriggerAuthentication", node["authenticationRef"]["name"]
        if "scaleTargetRef" in node:
            yield node["scaleTargetRef"]["kind"], node["scaleTargetRef"]["name"]
        if node.get("serviceAccountName") not in (None, "default"):
            yield "ServiceAccount", node["serviceAccountName"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def check_names(manifests: list[Manifest]) -> None:
    defined = {(doc["kind"], doc["metadata"]["name"]) for doc in manifests}
    for doc in manifests:
        kind, name = doc["kind"], doc["metadata"]["name"]
        assert len(name) <= MAX_NAME.get(kind, 63), (kind, name)
        assert DNS_LABEL.fullmatch(name), (kind, name)
        if kind == "Service":
            assert DNS_1035.fullmatch(name), name
        for labels in label_maps(doc):
            for key, value in labels.items():
                assert len(value) <= 63, (kind, key, value)
                assert LABEL_VALUE.fullmatch(value), (kind, key, value)
        for reference in references(doc):
            assert reference in defined, (kind, name, reference)


@pytest.mark.parametrize("version", HELM_VERSIONS)
@pytest.mark.parametrize("release", RELEASES)
def test_every_name_fits_for_the_longest_release_names(version: str, release: str) -> None:
    assert len(release) == LONGEST
    check_names(render(version, *EVERYTHING, release=release))
    check_names(render(version, *values_args("gitops-values.yaml"), release=release))


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_helm_refuses_one_character_more(version: str) -> None:
    assert template(version, release="e" * (LONGEST + 1)).returncode != 0


def test_default_names_are_unchanged() -> None:
    names = {doc["metadata"]["name"] for doc in render(HELM_VERSIONS[0], *EVERYTHING)}
    assert {
        "vote-pipeline",
        "vote-pipeline-ingest",
        "vote-pipeline-processor",
        "vote-pipeline-processor-sweeper",
        "vote-pipeline-redis",
        "vote-pipeline-redis-headless",
        "vote-pipeline-postgres",
        "vote-pipeline-migration",
    } <= names
