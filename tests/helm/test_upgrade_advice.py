"""Upgrades are advised with --reset-then-reuse-values: --reuse-values keeps the previous
release's values including the old chart's defaults, so a new chart version's defaults (and
any key it adds, which the closed schema then misses) never apply."""

from __future__ import annotations

import re

import pytest

from tests.support.helmchart import (
    CHART,
    HELM_VERSIONS,
    NAMESPACE,
    RELEASE,
    ROOT,
    run_helm,
)

pytestmark = pytest.mark.helm

REUSE = re.compile(r"(?<!-then)--reuse-values")


def advice_files() -> list[str]:
    paths = [ROOT / "README.md", CHART / "templates" / "NOTES.txt", *ROOT.glob("docs/**/*.md")]
    paths += [CHART / "README.md"] if (CHART / "README.md").is_file() else []
    return [str(path.relative_to(ROOT)) for path in paths]


@pytest.mark.parametrize("path", advice_files())
def test_no_upgrade_command_uses_reuse_values(path: str) -> None:
    for line in (ROOT / path).read_text(encoding="utf-8").splitlines():
        if "helm upgrade" in line:
            assert not REUSE.search(line), (path, line)


def test_the_notes_show_the_upgrade_command() -> None:
    result = run_helm(
        HELM_VERSIONS[1],
        *("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client"),
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"helm upgrade {RELEASE}" in notes
    assert "--reset-then-reuse-values" in notes


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_both_helm_versions_know_the_flag(version: str) -> None:
    assert "--reset-then-reuse-values" in run_helm(version, "upgrade", "--help").stdout
