"""keda/ validates against KEDA's CRD schemas and agrees with the names the code defines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.keda_crds import SAFE_LOADER, crd_validator
from tests.support.paths import ROOT
from votecontract import names

KEDA_DIR = ROOT / "keda"
ENV_NAMES = {value for key, value in vars(names).items() if key.startswith("ENV_")}


def load(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(), Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def scaledjob() -> dict[str, Any]:
    return load(KEDA_DIR / "scaledjob.yaml")


@pytest.fixture(scope="module")
def triggerauth() -> dict[str, Any]:
    return load(KEDA_DIR / "triggerauthentication.yaml")


def container(scaledjob: dict[str, Any]) -> dict[str, Any]:
    containers = scaledjob["spec"]["jobTargetRef"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


def env_of(scaledjob: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container(scaledjob)["env"]}


@pytest.fixture(scope="module")
def sweeper() -> dict[str, Any]:
    return load(KEDA_DIR / "sweeper-cronjob.yaml")


@pytest.mark.parametrize("filename", ["scaledjob.yaml", "triggerauthentication.yaml"])
def test_manifest_validates_against_crd_schema(filename: str) -> None:
    document = load(KEDA_DIR / filename)
    crd_validator(document["kind"], document["apiVersion"]).validate(document)


@pytest.mark.parametrize("kube_version", ["1.28.0", kubernetes_validate.latest_version()])
def test_sweeper_validates_against_kubernetes(sweeper: dict[str, Any], kube_version: str) -> None:
    kubernetes_validate.validate(sweeper, kube_version, strict=True)


def test_sweeper_runs_the_scaledjobs_pod_on_a_schedule(
    scaledjob: dict[str, Any], sweeper: dict[str, Any]
) -> None:
    """KEDA's lag ignores votes a failed Job left pending: the sweeper runs the same Job on a
    schedule whatever the lag, so they are claimed and recorded even when traffic stops."""
    job, target = sweeper["spec"]["jobTemplate"]["spec"], scaledjob["spec"]["jobTargetRef"]
    assert job["template"] == target["template"]
    for key in ("backoffLimit", "activeDeadlineSeconds"):
        assert job[key] == target[key], key
    assert sweeper["spec"]["concurrencyPolicy"] == "Forbid"
    assert sweeper["metadata"]["namespace"] == scaledjob["metadata"]["namespace"]


def test_schema_validation_rejects_a_misspelled_field(scaledjob: dict[str, Any]) -> None:
    broken = {**scaledjob, "spec": {**scaledjob["spec"], "pollingInterval": "5"}}
    with pytest.raises(jsonschema.ValidationError):
        crd_validator("ScaledJob", scaledjob["apiVersion"]).validate(broken)


def test_every_keda_file_is_checked() -> None:
    kinds = {load(path)["kind"] for path in KEDA_DIR.glob("*.yaml")}
    assert kinds == {"ScaledJob", "TriggerAuthentication", "CronJob"}


def test_trigger_uses_lag_mode_on_the_shared_stream_and_group(scaledjob: dict[str, Any]) -> None:
    (trigger,) = scaledjob["spec"]["triggers"]
    metadata = trigger["metadata"]
    assert trigger["type"] == "redis-streams"
    assert metadata["stream"] == names.DEFAULT_VOTE_STREAM
    assert metadata["consumerGroup"] == names.DEFAULT_VOTE_GROUP
    assert int(metadata["lagCount"]) >= 1
    assert int(metadata["activationLagCount"]) >= 0
    assert "pendingEntriesCount" not in metadata
    assert "streamLength" not in metadata


def test_trigger_authentication_is_the_one_referenced(
    scaledjob: dict[str, Any], triggerauth: dict[str, Any]
) -> None:
    (trigger,) = scaledjob["spec"]["triggers"]
    assert trigger["authenticationRef"]["name"] == triggerauth["metadata"]["name"]
    assert triggerauth["metadata"]["namespace"] == scaledjob["metadata"]["namespace"]
    refs = {ref["parameter"]: ref["key"] for ref in triggerauth["spec"]["secretTargetRef"]}
    assert refs == {"password": "REDIS_PASSWORD", "username": "REDIS_USERNAME"}


def test_env_names_are_the_shared_ones(scaledjob: dict[str, Any]) -> None:
    env = env_of(scaledjob)
    assert set(env) <= ENV_NAMES, set(env) - ENV_NAMES
    assert env[names.ENV_VOTE_STREAM]["value"] == names.DEFAULT_VOTE_STREAM
    assert env[names.ENV_VOTE_GROUP]["value"] == names.DEFAULT_VOTE_GROUP
    # The processor dead-letters votes for options not in the list: the list is explicit here,
    # so that changing the options is one edit next to the others.
    assert env[names.ENV_VOTE_OPTIONS]["value"] == ",".join(names.DEFAULT_VOTE_OPTIONS)
    for secret_env in (names.ENV_REDIS_URL, names.ENV_DATABASE_URL):
        assert env[secret_env]["valueFrom"]["secretKeyRef"]["key"] == secret_env


def test_consumer_name_is_the_job_name_from_the_downward_api(scaledjob: dict[str, Any]) -> None:
    env = env_of(scaledjob)
    field = env[names.ENV_JOB_NAME]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.labels['batch.kubernetes.io/job-name']"
    assert names.ENV_CONSUMER_NAME not in env


def test_readiness_probe_checks_the_ready_file_on_an_empty_dir(scaledjob: dict[str, Any]) -> None:
    pod = scaledjob["spec"]["jobTargetRef"]["template"]["spec"]
    ready_file = env_of(scaledjob)[names.ENV_READY_FILE]["value"]
    assert container(scaledjob)["readinessProbe"]["exec"]["command"] == ["test", "-f", ready_file]
    empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
    mounts = [m for m in container(scaledjob)["volumeMounts"] if m["name"] in empty_dirs]
    assert any(ready_file.startswith(m["mountPath"].rstrip("/") + "/") for m in mounts)
    assert scaledjob["spec"]["scalingStrategy"]["pendingPodConditions"] == ["Ready"]


def test_job_lifecycle_settings(scaledjob: dict[str, Any]) -> None:
    spec = scaledjob["spec"]
    job = spec["jobTargetRef"]
    pod = job["template"]["spec"]
    max_runtime_s = int(env_of(scaledjob)[names.ENV_MAX_RUNTIME_S]["value"])
    assert pod["restartPolicy"] == "Never"
    assert job["activeDeadlineSeconds"] > max_runtime_s + pod["terminationGracePeriodSeconds"]
    # The processor exits on its own grace, before the kubelet's SIGKILL.
    grace_s = float(env_of(scaledjob)[names.ENV_SHUTDOWN_GRACE_S]["value"])
    assert 0 < grace_s < pod["terminationGracePeriodSeconds"]
    assert job["backoffLimit"] >= 1
    assert spec["scalingStrategy"]["strategy"] == "accurate"
    assert spec["rollout"]["strategy"] == "gradual"
    assert spec["successfulJobsHistoryLimit"] <= 10
    assert spec["failedJobsHistoryLimit"] <= 10


def test_pod_runs_locked_down(scaledjob: dict[str, Any]) -> None:
    pod = scaledjob["spec"]["jobTargetRef"]["template"]["spec"]
    security = container(scaledjob)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container(scaledjob)["resources"]["limits"]["memory"]
