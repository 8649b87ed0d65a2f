"""Operators' extension points on every pod of the chart (annotations, labels, priority class,
extra environment, volumes and mounts), accepted by the schema and rendered where Kubernetes
reads them; Job pods opt out of service-mesh sidecars, which would keep them from completing
(rendered by helm 3 and helm 4, validated against Kubernetes' schemas)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.support.helmchart import HELM_VERSIONS, Manifest, find, pod_spec, render, render_values

pytestmark = pytest.mark.helm

# Values key -> the workloads whose pods it configures.
COMPONENTS = {
    "ingest": [("Deployment", "vote-pipeline-ingest")],
    "processor": [
        ("ScaledJob", "vote-pipeline-processor"),
        ("CronJob", "vote-pipeline-processor-sweeper"),
    ],
    "migration": [("Job", "vote-pipeline-migration")],
    "tests": [("Pod", "vote-pipeline-test")],
}
# Istio reads a pod label (its webhook's objectSelector), Linkerd a pod annotation.
MESH_OPT_OUT = {
    "labels": {"sidecar.istio.io/inject": "false"},
    "annotations": {"linkerd.io/inject": "disabled"},
}


def extras(component: str) -> dict[str, Any]:
    return {
        "podAnnotations": {"example.com/for": component},
        "podLabels": {"example.com/team": component},
        "priorityClassName": f"{component}-priority",
        "extraEnv": [{"name": "EXTRA_SETTING", "value": component}],
        "extraEnvFrom": [{"configMapRef": {"name": f"{component}-env"}}],
        "extraVolumes": [{"name": "extra", "configMap": {"name": f"{component}-files"}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/etc/extra", "readOnly": True}],
    }


def pod_metadata(manifest: Manifest) -> dict[str, Any]:
    if manifest["kind"] == "Pod":
        metadata: dict[str, Any] = manifest["metadata"]
        return metadata
    spec = manifest["spec"]
    if manifest["kind"] == "ScaledJob":
        spec = spec["jobTargetRef"]
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template_metadata: dict[str, Any] = spec["template"]["metadata"]
    return template_metadata


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_every_pod_takes_the_extension_points(version: str) -> None:
    manifests = render_values(version, {component: extras(component) for component in COMPONENTS})
    for component, workloads in COMPONENTS.items():
        given = extras(component)
        for kind, name in workloads:
            manifest = find(manifests, kind, name)
            metadata, pod = pod_metadata(manifest), pod_spec(manifest)
            container = pod["containers"][0]
            assert metadata["annotations"]["example.com/for"] == component, name
            assert metadata["labels"]["example.com/team"] == component, name
            assert pod["priorityClassName"] == given["priorityClassName"], name
            assert container["env"][-1] == given["extraEnv"][0], name
            assert given["extraEnvFrom"][0] in container["envFrom"], name
            assert given["extraVolumes"][0] in pod["volumes"], name
            assert given["extraVolumeMounts"][0] in container["volumeMounts"], name
    for manifest in manifests:
        if not manifest["apiVersion"].startswith("keda.sh/"):
            kubernetes_validate.validate(manifest, "1.28.0", strict=True)


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_job_pods_opt_out_of_mesh_sidecars_by_default(version: str) -> None:
    manifests = render(version)
    for component, workloads in COMPONENTS.items():
        for kind, name in workloads:
            metadata = pod_metadata(find(manifests, kind, name))
            for field, expected in MESH_OPT_OUT.items():
                given = metadata.get(field) or {}
                found = {key: given.get(key) for key in expected}
                # A long-running ingest pod is served by its sidecar like any other service.
                assert found == (expected if component != "ingest" else dict.fromkeys(expected))


def test_the_opt_out_can_be_lifted_for_native_sidecars() -> None:
    values = {
        "podLabels": {"sidecar.istio.io/inject": "true"},
        "podAnnotations": {
            "sidecar.istio.io/nativeSidecar": "true",
            "linkerd.io/inject": None,
        },
    }
    manifests = render_values(HELM_VERSIONS[0], {"processor": values})
    metadata = pod_metadata(find(manifests, "ScaledJob"))
    assert metadata["labels"]["sidecar.istio.io/inject"] == "true"
    assert metadata["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"
    assert "linkerd.io/inject" not in metadata["annotations"]
