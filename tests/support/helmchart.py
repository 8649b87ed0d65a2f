"""Render the Helm chart with the real helm binaries (helpers for the helm-marked tests)."""

from __future__ import annotations

import functools
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import ROOT

CHART = ROOT / "helm"
INSTALL_SCRIPT = ROOT / "scripts" / "install-helm.sh"
# The release and namespace keda/ is written for, so that the default rendering can be
# compared with it.
RELEASE = "vote-pipeline"
NAMESPACE = "vote-pipeline"
DEFAULT = "default"
SCENARIOS = (DEFAULT, *sorted(path.name for path in (CHART / "ci").glob("*-values.yaml")))
HOOK = "helm.sh/hook"
HELM_VERSIONS = ("3.17.2", "4.1.4")

Manifest = dict[str, Any]


@dataclass(frozen=True, slots=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str


@functools.cache
def helm_binaries() -> dict[str, Path]:
    """helm version -> binary, installed (or found in the cache) by scripts/install-helm.sh."""
    done = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    pairs = (line.split(" ", 1) for line in done.stdout.splitlines() if line.strip())
    return {version: Path(path) for version, path in pairs}


def run_helm(version: str, *args: str) -> HelmResult:
    done = subprocess.run(
        [str(helm_binaries()[version]), *args],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    return HelmResult(done.returncode, done.stdout, done.stderr)


def values_args(scenario: str) -> list[str]:
    return [] if scenario == DEFAULT else ["--values", str(CHART / "ci" / scenario)]


def template(version: str, *args: str, release: str = RELEASE, chart: Path = CHART) -> HelmResult:
    return run_helm(version, "template", release, str(chart), "--namespace", NAMESPACE, *args)


def render(version: str, *args: str, release: str = RELEASE, chart: Path = CHART) -> list[Manifest]:
    """The manifests `helm template` renders (hooks and tests included); fails on errors."""
    result = template(version, *args, release=release, chart=chart)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def template_values(version: str, values: Mapping[str, Any], *args: str) -> HelmResult:
    """`helm template` with `values` given as a values file (exact strings, no --set parsing)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump(dict(values), file)
        file.flush()
        return template(version, "--values", file.name, *args)


def render_values(version: str, values: Mapping[str, Any], *args: str) -> list[Manifest]:
    result = template_values(version, values, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    matches = [
        doc
        for doc in manifests
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def is_hook(manifest: Manifest) -> bool:
    return HOOK in (manifest["metadata"].get("annotations") or {})


def pod_spec(manifest: Manifest) -> dict[str, Any]:
    """The pod spec of a workload (Deployment, StatefulSet, Job, CronJob, ScaledJob) or of a
    Pod."""
    kind = manifest["kind"]
    spec: dict[str, Any] = manifest["spec"]
    if kind == "Pod":
        return spec
    if kind == "ScaledJob":
        spec = spec["jobTargetRef"]
    if kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template_spec: dict[str, Any] = spec["template"]["spec"]
    return template_spec


def keda_auth(manifests: list[Manifest]) -> dict[str, str]:
    """The authentication parameters KEDA's resolver gives the redis-streams scaler: each
    secretTargetRef's Secret value, whitespace-trimmed (KEDA v2.20 pkg/scalers/scalersconfig)."""
    secrets = {
        doc["metadata"]["name"]: doc.get("stringData", {})
        for doc in manifests
        if doc["kind"] == "Secret" and not is_hook(doc)
    }
    auth = find(manifests, "TriggerAuthentication")["spec"]
    return {
        ref["parameter"]: secrets[ref["name"]].get(ref["key"], "").strip()
        for ref in auth["secretTargetRef"]
    }
