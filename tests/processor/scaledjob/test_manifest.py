"""Parsing keda/scaledjob.yaml (and broken variants of it) for the local runner."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from processor.scaledjob.manifest import ManifestError, load_manifest, parse_manifest
from processor.scaledjob.scaling import ReplicaBounds
from tests.support.paths import SCALEDJOB
from votecontract import names


@pytest.fixture
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SCALEDJOB.read_text())
    return copy.deepcopy(loaded)


def test_project_manifest_parses() -> None:
    manifest = load_manifest(SCALEDJOB)
    (trigger,) = manifest.triggers
    assert manifest.name == "vote-processor"
    assert manifest.strategy.strategy == "accurate"
    assert manifest.strategy.pending_pod_conditions == ("Ready",)
    assert (trigger.stream, trigger.group) == (names.DEFAULT_VOTE_STREAM, names.DEFAULT_VOTE_GROUP)
    assert manifest.job.command == ("python", "-m", "processor")
    assert manifest.job.readiness is not None
    assert "/run/processor" in manifest.job.empty_dir_mounts


def test_replica_counts_are_read_from_the_manifest(document: dict[str, Any]) -> None:
    assert load_manifest(SCALEDJOB).bounds == ReplicaBounds(0, 10)  # keda/scaledjob.yaml
    document["spec"].update(minReplicaCount=2, maxReplicaCount="7")
    assert parse_manifest(document).bounds == ReplicaBounds(2, 7)
    del document["spec"]["minReplicaCount"], document["spec"]["maxReplicaCount"]
    assert parse_manifest(document).bounds == ReplicaBounds(None, None)


def test_kubernetes_and_keda_defaults_apply(document: dict[str, Any]) -> None:
    spec = document["spec"]
    for key in ("pollingInterval", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        del spec[key]
    del spec["jobTargetRef"]["backoffLimit"]
    del spec["jobTargetRef"]["template"]["spec"]["terminationGracePeriodSeconds"]
    manifest = parse_manifest(document)
    assert manifest.polling_interval_s == 30
    assert (manifest.successful_jobs_history_limit, manifest.failed_jobs_history_limit) == (
        100,
        100,
    )
    assert (manifest.job.backoff_limit, manifest.job.grace_period_s) == (6, 30)


def test_container_args_follow_the_command(document: dict[str, Any]) -> None:
    container = document["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]
    container["args"] = ["--verbose"]
    assert parse_manifest(document).job.command == ("python", "-m", "processor", "--verbose")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("spec", "triggers", 0, "type"), "rabbitmq", "redis-streams"),
        (("spec", "triggers", 0, "metadata", "lagCount"), "0", "lagCount"),
        (("spec", "scalingStrategy", "strategy"), "fastest", "strategy"),
        (("spec", "pollingInterval"), "soon", "pollingInterval"),
        (("kind",), "ScaledObject", "ScaledJob"),
    ],
)
def test_unsupported_or_invalid_fields_are_named(
    document: dict[str, Any], path: tuple[Any, ...], value: str, message: str
) -> None:
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ManifestError, match=message):
        parse_manifest(document)


def test_pending_entries_mode_is_refused(document: dict[str, Any]) -> None:
    metadata = document["spec"]["triggers"][0]["metadata"]
    del metadata["lagCount"]
    metadata["pendingEntriesCount"] = "10"
    with pytest.raises(ManifestError, match="lag mode"):
        parse_manifest(document)


def test_file_without_a_scaledjob_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\n")
    with pytest.raises(ManifestError, match="no ScaledJob"):
        load_manifest(path)
