"""The direction of dependencies (docs/architecture.md): ingest and processor never import each
other, the shared contract imports only the standard library, and the import rules of
pyproject.toml (`lint-imports`, run by CI) fail on a violation."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PACKAGES = ("votecontract", "ingest", "processor", "loadtest")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def imported_modules(package: Path) -> set[str]:
    """The top-level names of every module the package's files import (absolute imports)."""
    found: set[str] = set()
    for source in package.rglob("*.py"):
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    return found


def test_the_contract_imports_only_the_standard_library() -> None:
    outside = imported_modules(ROOT / "votecontract") - set(sys.stdlib_module_names)
    assert outside == {"votecontract"}


@pytest.mark.parametrize(
    ("importer", "imported"), [("ingest", "processor"), ("processor", "ingest")]
)
def test_no_file_of_one_service_names_the_other(importer: str, imported: str) -> None:
    assert imported not in imported_modules(ROOT / importer)


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """The packages and pyproject.toml, copied where a test may break them."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_import_rules_hold_on_the_tree(tree_copy: Path) -> None:
    result = lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("ingest/app.py", "import processor.job", "never import each other"),
        ("processor/job.py", "from ingest import votes", "never import each other"),
        ("votecontract/names.py", "import ingest.app", "imports nothing of the project"),
        ("processor/scaledjob/runner.py", "import processor.store", "share no code with the Job"),
    ],
)
def test_a_deliberate_break_fails_the_import_rules(
    tree_copy: Path, module: str, line: str, contract: str
) -> None:
    target = tree_copy / module
    target.write_text(target.read_text() + f"\n{line}  # deliberate break\n")
    result = lint_imports(tree_copy)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout, result.stdout
