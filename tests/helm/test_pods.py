"""What the chart's pods can do once Kubernetes starts them: read the files mounted for them,
run under the configured identity, take the operator's extension points, schedule where the
operator says (rendered by helm 3 and helm 4)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.support.helmchart import (
    HELM_VERSIONS,
    HOOK,
    Manifest,
    find,
    pod_spec,
    render,
    render_values,
    values_args,
)

pytestmark = pytest.mark.helm

WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob", "ScaledJob", "Pod")
TLS = ("--set", "tls.secretName=vote-tls")


def pipeline_pods(manifests: list[Manifest]) -> list[Manifest]:
    """The workloads running the vote-pipeline image (not the bundled databases)."""
    return [doc for doc in manifests if doc["kind"] in WORKLOADS and doc["kind"] != "StatefulSet"]


def find_all(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in manifests if doc["kind"] == kind]


def can_read_secret_file(pod: dict[str, Any], container: dict[str, Any], volume: str) -> bool:
    """Kubernetes' rules for a file of a Secret volume: owned by root, group root (or fsGroup,
    which also adds group read to the mode), mode `defaultMode` (0644 when unset); the process
    runs as runAsUser with runAsGroup, fsGroup and supplementalGroups."""
    pod_context = pod.get("securityContext") or {}
    context = {**pod_context, **(container.get("securityContext") or {})}
    uid = context.get("runAsUser", 0)
    fs_group = pod_context.get("fsGroup")
    groups = {context.get("runAsGroup", 0), *pod_context.get("supplementalGroups", [])}
    if fs_group is not None:
        groups.add(fs_group)
    (source,) = (item["secret"] for item in pod["volumes"] if item["name"] == volume)
    mode = source.get("defaultMode", 0o644) | (0o440 if fs_group is not None else 0)
    file_group = fs_group if fs_group is not None else 0
    return bool(uid == 0 or mode & 0o004 or (mode & 0o040 and file_group in groups))


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_the_app_user_can_read_the_tls_files(version: str) -> None:
    manifests = render(version, *TLS)
    mounting = 0
    for manifest in pipeline_pods(manifests):
        pod = pod_spec(manifest)
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                if mount["name"] == "tls":
                    mounting += 1
                    assert can_read_secret_file(pod, container, "tls"), manifest["metadata"]
    # ingest, processor (ScaledJob and sweeper) and migration
    assert mounting == 4


def test_the_tls_key_is_not_readable_by_other_users() -> None:
    manifests = render(HELM_VERSIONS[0], *TLS)
    for manifest in pipeline_pods(manifests):
        for volume in pod_spec(manifest).get("volumes", []):
            if volume["name"] == "tls":
                assert volume["secret"]["defaultMode"] & 0o007 == 0


@pytest.mark.parametrize("version", HELM_VERSIONS)
@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--set", "serviceAccount.create=false", "--set", "serviceAccount.name=db-migrator"),
        values_args("external-values.yaml"),
        values_args("existing-secret-values.yaml"),
    ],
    ids=["created", "existing", "external database", "existing secret"],
)
def test_the_migration_runs_under_the_configured_service_account(
    version: str, args: tuple[str, ...]
) -> None:
    manifests = render(version, *args)
    migration = find(manifests, "Job", "vote-pipeline-migration")
    expected = pod_spec(find(manifests, "Deployment"))["serviceAccountName"]
    assert pod_spec(migration)["serviceAccountName"] == expected
    if find_all(manifests, "ServiceAccount"):
        # The chart creates it with the release's resources: a pre-install hook would wait for
        # it forever (pod creation is refused until it exists).
        assert "pre-install" not in migration["metadata"]["annotations"][HOOK].split(",")


def scheduling(component: str) -> dict[str, Any]:
    return {
        "nodeSelector": {"example.com/pool": component},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": component, "effect": "NoSchedule"}
        ],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "example.com/disk", "operator": "In", "values": ["ssd"]}
                            ]
                        }
                    ]
                }
            }
        },
    }


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_bundled_databases_pull_and_schedule_as_configured(version: str) -> None:
    secrets = [{"name": "regcred"}]
    values = {"imagePullSecrets": secrets, **{db: scheduling(db) for db in ("redis", "postgres")}}
    manifests = render_values(version, values)
    for component in ("redis", "postgres"):
        statefulset = find(manifests, "StatefulSet", f"vote-pipeline-{component}")
        pod = pod_spec(statefulset)
        assert pod["imagePullSecrets"] == secrets, component
        for key, value in scheduling(component).items():
            assert pod[key] == value, (component, key)
        kubernetes_validate.validate(statefulset, "1.28.0", strict=True)
