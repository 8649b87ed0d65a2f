"""A pod spec resolved as the kubelet resolves it: env sources, field references, volumes and
mount paths, the pod's own address."""

from __future__ import annotations

import base64
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from processor.nodeagent.image import ImageConfig
from processor.nodeagent.podspec import (
    MissingObjectError,
    PodSpecError,
    decode_secret,
    expand,
    plan_container,
    rewrite,
)

IMAGE = ImageConfig(("python", "-m"), ("ingest",), {"HOST": "0.0.0.0", "PORT": "8000"})
OBJECTS: dict[tuple[str, str], dict[str, str]] = {
    ("secret", "creds"): {"REDIS_URL": "redis://u:p%40ss@127.0.0.1:6379/0", "ca.crt": "CA"},
    ("configmap", "settings"): {"VOTE_OPTIONS": "cats,dogs", "LOG_FORMAT": "json"},
}


JOB_LABEL = "metadata.labels['batch.kubernetes.io/job-name']"
OPTIONAL_REF = {"name": "nope", "key": "k", "optional": True}


def data(kind: str, namespace: str, name: str) -> dict[str, str] | None:
    assert namespace == "votes"
    return OBJECTS.get((kind, name))


def pod(container: dict[str, Any], volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "proc-abc-x1",
            "namespace": "votes",
            "uid": "u-1",
            "labels": {"batch.kubernetes.io/job-name": "proc-abc"},
        },
        "spec": {"containers": [container], "volumes": volumes or [], "nodeName": "n1"},
        "status": {"podIP": "127.0.1.7"},
    }


def test_env_sources_resolve_in_the_kubelets_order(tmp_path: Path) -> None:
    container = {
        "name": "processor",
        "image": "vote-pipeline:1",
        "envFrom": [{"configMapRef": {"name": "settings"}}],
        "env": [
            {"name": "LOG_FORMAT", "value": "text"},
            {"name": "REDIS_URL", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "REDIS_URL"}}},  # noqa: E501
            {"name": "JOB_NAME", "valueFrom": {"fieldRef": {"fieldPath": JOB_LABEL}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "GREETING", "value": "job $(JOB_NAME) $$(JOB_NAME) $(UNKNOWN)"},
            {"name": "OPTIONAL", "valueFrom": {"secretKeyRef": OPTIONAL_REF}},
        ],
    }  # fmt: skip
    plan = plan_container(pod(container), container, IMAGE, tmp_path, data)
    assert plan.env["VOTE_OPTIONS"] == "cats,dogs"
    assert plan.env["LOG_FORMAT"] == "text"
    assert plan.env["REDIS_URL"] == "redis://u:p%40ss@127.0.0.1:6379/0"
    assert plan.env["JOB_NAME"] == "proc-abc"
    assert plan.env["POD_IP"] == "127.0.1.7"
    assert plan.env["GREETING"] == "job proc-abc $(JOB_NAME) $(UNKNOWN)"
    assert "OPTIONAL" not in plan.env
    assert plan.env["HOST"] == "127.0.1.7", "all interfaces of the pod means its own address"
    assert plan.argv == (sys.executable, "-m", "ingest")


def test_a_missing_secret_waits_and_an_unsupported_source_refuses(tmp_path: Path) -> None:
    missing = {"name": "c", "image": "i", "env": [
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}  # fmt: skip
    with pytest.raises(MissingObjectError):
        plan_container(pod(missing), missing, IMAGE, tmp_path, data)
    resource = {"name": "c", "image": "i", "env": [
        {"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}  # fmt: skip
    with pytest.raises(PodSpecError) as refused:
        plan_container(pod(resource), resource, IMAGE, tmp_path, data)
    assert not isinstance(refused.value, MissingObjectError)


def test_volumes_are_directories_of_the_pod_and_mount_paths_point_there(tmp_path: Path) -> None:
    volumes = [
        {"name": "run", "emptyDir": {"medium": "Memory"}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "tls", "secret": {"secretName": "creds", "defaultMode": 0o440,
                                   "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    ]  # fmt: skip
    container = {
        "name": "processor",
        "image": "i",
        "command": ["python", "-m", "processor", "--ready=/run/processor/ready"],
        "env": [
            {"name": "READY_FILE", "value": "/run/processor/ready"},
            {"name": "CA", "value": "rediss://h/0?ssl_ca_certs=/etc/tls/ca.crt"},
            {"name": "OTHER", "value": "/etc/tlsother/x"},
        ],
        "volumeMounts": [
            {"name": "run", "mountPath": "/run/processor"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "tls", "mountPath": "/etc/tls", "readOnly": True},
        ],
    }
    plan = plan_container(pod(container, volumes), container, IMAGE, tmp_path, data)
    run, tls = tmp_path / "volumes" / "run", tmp_path / "volumes" / "tls"
    assert plan.env["READY_FILE"] == f"{run}/ready"
    assert plan.env["CA"] == f"rediss://h/0?ssl_ca_certs={tls}/ca.crt"
    assert plan.env["OTHER"] == "/etc/tlsother/x"
    assert plan.env["TMPDIR"] == str(tmp_path / "volumes" / "tmp")
    assert plan.argv[-1] == f"--ready={run}/ready"
    assert (tls / "ca.crt").read_text() == "CA"
    assert stat.S_IMODE((tls / "ca.crt").stat().st_mode) == 0o440


def test_other_volume_kinds_are_refused(tmp_path: Path) -> None:
    container = {"name": "c", "image": "i", "volumeMounts": [{"name": "d", "mountPath": "/d"}]}
    volumes = [{"name": "d", "hostPath": {"path": "/var"}}]
    with pytest.raises(PodSpecError, match="hostPath"):
        plan_container(pod(container, volumes), container, IMAGE, tmp_path, data)


def test_expand_and_rewrite_edges() -> None:
    assert expand("$(A)$(B)", {"A": "1"}) == "1$(B)"
    assert rewrite("/tmp", {"/tmp": Path("/x/tmp")}) == "/x/tmp"
    assert rewrite("/tmpfoo /tmp/a", {"/tmp": Path("/x")}) == "/tmpfoo /x/a"
    encoded = base64.b64encode(b"p@ss:word").decode()
    assert decode_secret({"k": encoded}) == {"k": "p@ss:word"}
