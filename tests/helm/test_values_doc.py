"""helm/README.md documents every value of helm/values.yaml: its tables are what
scripts/helm-values-doc.py generates from the `# --` comments, and they cover every leaf."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import ROOT

SCRIPT = ROOT / "scripts" / "helm-values-doc.py"
CHART = ROOT / "helm"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def leaf_paths(value: Any, path: str = "") -> list[str]:
    """Every key path down to a scalar, a list or an empty map."""
    if isinstance(value, dict) and value:
        return [
            p
            for key, sub in value.items()
            for p in leaf_paths(sub, f"{path}.{key}" if path else key)
        ]
    return [path]


def documented_keys(readme: str) -> set[str]:
    """The first cell of every row of the values tables."""
    return {
        line.split("|")[1].strip().strip("`")
        for line in readme.splitlines()
        if line.startswith("| `")
    }


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    for name in ("values.yaml", "README.md"):
        shutil.copy(CHART / name, tmp_path / name)
    return tmp_path


def test_the_committed_readme_is_the_generated_one() -> None:
    result = run("--check")
    assert result.returncode == 0, result.stderr


def test_every_leaf_value_has_a_row_of_its_own_or_under_a_documented_parent() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = documented_keys((CHART / "README.md").read_text())
    undocumented = [
        leaf
        for leaf in leaf_paths(values)
        if not any(leaf == key or leaf.startswith(key + ".") for key in documented)
    ]
    assert undocumented == []
    assert len(documented) > 50


def test_a_stale_readme_fails_the_check(chart_copy: Path) -> None:
    values = chart_copy / "values.yaml"
    values.write_text(
        values.read_text().replace("# -- Most processor Jobs at once.", "# -- Most Jobs.")
    )
    result = run("--check", "--chart", str(chart_copy))
    assert result.returncode == 1
    assert "+| `processor.maxReplicaCount` | int | `10` | Most Jobs. |" in result.stderr


def test_a_value_without_a_description_stops_the_generator(chart_copy: Path) -> None:
    values = chart_copy / "values.yaml"
    values.write_text(values.read_text() + "extra:\n  undocumented: 1\n")
    result = run("--chart", str(chart_copy))
    assert result.returncode == 2
    assert "extra.undocumented: no `# --` description" in result.stderr


def test_regenerating_writes_the_table(chart_copy: Path) -> None:
    values = chart_copy / "values.yaml"
    values.write_text(values.read_text() + "# -- A new switch.\nnewSwitch: true\n")
    assert run("--chart", str(chart_copy)).returncode == 0
    assert (
        "| `newSwitch` | bool | `true` | A new switch. |" in (chart_copy / "README.md").read_text()
    )
    assert run("--check", "--chart", str(chart_copy)).returncode == 0
