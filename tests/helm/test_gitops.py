"""The chart under GitOps tools, which render it with `helm template` (no cluster: `lookup`
finds nothing) and apply it themselves: the same values give the same manifests, and Argo CD's
reading of the hooks orders the migration after the database it needs and before the code
that needs the schema (gitops-engine pkg/sync/hook: an `argocd.argoproj.io/hook` annotation
replaces the Helm hook; pre-install/pre-upgrade map to PreSync, post-* to PostSync; waves come
from `argocd.argoproj.io/sync-wave`, else `helm.sh/hook-weight`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.helmchart import (
    CHART,
    HELM_VERSIONS,
    HOOK,
    Manifest,
    find,
    render,
    template,
    values_args,
)

pytestmark = pytest.mark.helm

GITOPS = "gitops-values.yaml"
ARGO_HOOK = "argocd.argoproj.io/hook"
ARGO_WAVE = "argocd.argoproj.io/sync-wave"
HELM_TO_ARGO = {
    "pre-install": "PreSync",
    "pre-upgrade": "PreSync",
    "post-install": "PostSync",
    "post-upgrade": "PostSync",
}
PHASES = ("PreSync", "Sync", "PostSync")
# Workloads that run the release's code, which needs the new schema.
CODE = (("Deployment", "vote-pipeline-ingest"), ("ScaledJob", None), ("CronJob", None))


def argo_phases(manifest: Manifest) -> set[str]:
    """The sync phases Argo CD applies a manifest in (none: never applied, e.g. helm tests)."""
    annotations = manifest["metadata"].get("annotations") or {}
    if ARGO_HOOK in annotations:
        return {kind.strip() for kind in annotations[ARGO_HOOK].split(",")} & set(PHASES)
    if HOOK in annotations:
        return {HELM_TO_ARGO[kind] for kind in annotations[HOOK].split(",") if kind in HELM_TO_ARGO}
    return {"Sync"}


def argo_step(manifest: Manifest) -> tuple[int, int]:
    """(phase, wave): Argo CD applies steps in this order, each after the previous one's
    resources are healthy and its hooks completed."""
    annotations = manifest["metadata"].get("annotations") or {}
    wave = int(annotations.get(ARGO_WAVE, annotations.get("helm.sh/hook-weight", "0")))
    (phase,) = argo_phases(manifest)
    return PHASES.index(phase), wave


@pytest.mark.parametrize("version", HELM_VERSIONS)
@pytest.mark.parametrize("scenario", [GITOPS, "existing-secret-values.yaml"])
def test_rendering_twice_gives_the_same_bytes(version: str, scenario: str) -> None:
    first, second = (template(version, *values_args(scenario)) for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


@pytest.mark.parametrize("version", HELM_VERSIONS)
@pytest.mark.parametrize("scenario", [GITOPS, "external-values.yaml"])
def test_argo_cd_migrates_after_what_it_needs_and_before_the_code(
    version: str, scenario: str
) -> None:
    """With the bundled PostgreSQL or the chart's own ServiceAccount, the migration needs
    resources of the release."""
    manifests = render(version, *values_args(scenario))
    job = find(manifests, "Job", "vote-pipeline-migration")
    # Once per sync: as PreSync it would wait for what is not created yet (the first sync
    # never gets past it), as PostSync too it would run after the new code.
    assert argo_phases(job) == {"Sync"}
    needed = [doc for doc in manifests if doc["kind"] in ("StatefulSet", "ServiceAccount")]
    assert needed
    for manifest in needed:
        assert argo_step(manifest) < argo_step(job), manifest["metadata"]["name"]
    for kind, name in CODE:
        assert argo_step(job) < argo_step(find(manifests, kind, name)), kind
    secret = find(manifests, "Secret", "vote-pipeline-migration")
    assert argo_step(secret) < argo_step(job)


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_argo_cd_migrates_before_anything_when_nothing_is_needed(version: str) -> None:
    """External database, existing ServiceAccount and Secret: PreSync, as Helm's pre-install."""
    manifests = render(version, *values_args("existing-secret-values.yaml"))
    job = find(manifests, "Job", "vote-pipeline-migration")
    assert argo_phases(job) == {"PreSync"}
    for kind, name in CODE:
        assert argo_step(job) < argo_step(find(manifests, kind, name)), kind


def test_helm_tests_are_never_applied_by_argo_cd() -> None:
    manifests = render(HELM_VERSIONS[0], *values_args(GITOPS))
    assert argo_phases(find(manifests, "Pod")) == set()


@pytest.mark.parametrize("version", HELM_VERSIONS)
@pytest.mark.parametrize("enabled", [True, False])
def test_the_chart_works_as_a_conditional_subchart(
    tmp_path: Path, version: str, enabled: bool
) -> None:
    """An umbrella chart switches its dependency with `condition: vote-pipeline.enabled`, so
    the subchart's values carry `enabled`, which its closed schema must accept."""
    parent = tmp_path / "umbrella"
    shutil.copytree(CHART, parent / "charts" / "vote-pipeline")
    dependency = {"name": "vote-pipeline", "version": "0.1.0", "condition": "vote-pipeline.enabled"}
    chart = {
        "apiVersion": "v2",
        "name": "umbrella",
        "version": "1.0.0",
        "dependencies": [dependency],
    }
    (parent / "Chart.yaml").write_text(yaml.safe_dump(chart))
    (parent / "values.yaml").write_text(yaml.safe_dump({"vote-pipeline": {"enabled": enabled}}))
    manifests = render(version, release="umbrella", chart=parent)
    assert bool([doc for doc in manifests if doc["kind"] == "ScaledJob"]) is enabled
