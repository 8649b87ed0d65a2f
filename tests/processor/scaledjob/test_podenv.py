"""How keda/scaledjob.yaml's env and volumes map onto one local pod."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from processor.scaledjob.manifest import EnvVar, ManifestError, load_manifest
from processor.scaledjob.podenv import (
    PodIdentity,
    check_env_sources,
    localize,
    pod_env,
    volume_dirs,
)
from tests.support.paths import SCALEDJOB
from votecontract import names

POD = PodIdentity("vote-processor-x7k2q", "vote-processor-x7k2q-b4n9z", "vote-pipeline")
HOST = {
    "PATH": "/usr/bin",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1/x",
    "AWS_SECRET_ACCESS_KEY": "not for Jobs",
}


def test_project_manifest_maps_onto_a_local_pod(tmp_path: Path) -> None:
    template = load_manifest(SCALEDJOB).job
    mounts = volume_dirs(template, tmp_path)
    env = pod_env(template, POD, HOST, mounts)

    assert env[names.ENV_JOB_NAME] == POD.job_name
    assert env[names.ENV_REDIS_URL] == HOST["REDIS_URL"]
    assert env[names.ENV_DATABASE_URL] == HOST["DATABASE_URL"]
    assert env[names.ENV_READY_FILE] == str(mounts["/run/processor"] / "ready")
    assert env["PATH"] == "/usr/bin"
    assert "AWS_SECRET_ACCESS_KEY" not in env


def test_secret_missing_from_the_runner_env_is_left_unset_and_reported() -> None:
    manifest = load_manifest(SCALEDJOB)
    host = {"PATH": "/usr/bin"}
    assert check_env_sources(manifest, host) == [names.ENV_REDIS_URL, names.ENV_DATABASE_URL]
    assert names.ENV_REDIS_URL not in pod_env(manifest.job, POD, host, {})


def test_pod_and_namespace_fields() -> None:
    template = dataclasses.replace(
        load_manifest(SCALEDJOB).job,
        env=(
            EnvVar("POD", field_path="metadata.name"),
            EnvVar("NS", field_path="metadata.namespace"),
            EnvVar("LEGACY", field_path="metadata.labels['job-name']"),
        ),
    )
    env = pod_env(template, POD, {}, {})
    assert (env["POD"], env["NS"], env["LEGACY"]) == (POD.pod_name, POD.namespace, POD.job_name)


def test_unsupported_field_is_refused() -> None:
    manifest = load_manifest(SCALEDJOB)
    job = dataclasses.replace(manifest.job, env=(EnvVar("IP", field_path="status.podIP"),))
    with pytest.raises(ManifestError, match=r"status\.podIP"):
        check_env_sources(dataclasses.replace(manifest, job=job), HOST)


@pytest.mark.parametrize(
    ("value", "local"),
    [("/run/processor/ready", "R/ready"), ("/run/processor", "R"), ("/run/processorx", None)],
)
def test_mount_paths_are_rewritten_only_at_path_boundaries(value: str, local: str | None) -> None:
    mounts = {"/run/processor": Path("R")}
    assert localize(value, mounts) == (local or value)
