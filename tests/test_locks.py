"""The lock files agree with pyproject.toml, the image and CI install from them, and the wheel
carries every file the services read at run time (the page's static files included).

requirements/*.lock are compiled by scripts/lock-requirements.sh (uv pip compile, hashes of
every file of every pinned version); a dependency added to pyproject.toml without re-running it
fails here, naming the package."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.paths import ROOT

LOCKS = ROOT / "requirements"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)(?P<rest>.*)$")
# What the image's wheel must hold besides Python modules (pyproject's package-data).
DATA_FILES = (
    "ingest/readside/static/favicon.svg",
    "ingest/readside/static/vote.css",
    "ingest/readside/static/vote.js",
    "ingest/readside/templates/index.html",
    "processor/grants.sql",
    "processor/migrations/0001_",
)


@dataclass(frozen=True, slots=True)
class Pin:
    version: str
    hashes: int


def read_lock(path: Path) -> dict[str, Pin]:
    """Canonical name -> the pin pip installs here (the lock is universal: a pin may apply to
    some Python versions or platforms only); continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pins: dict[str, Pin] = {}
    for line in text.splitlines():
        match = PIN.match(line.strip())
        if match is None:
            continue
        marker = match["rest"].split("--hash", 1)[0].strip().removeprefix(";").strip()
        if marker and not Marker(marker).evaluate():
            continue
        name = canonicalize_name(match["name"])
        assert name not in pins, f"{path.name}: {name} pinned twice"
        pins[name] = Pin(match["version"], match["rest"].count("--hash=sha256:"))
    return pins


def project() -> dict[str, list[Requirement]]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(text) for text in meta["dependencies"]]
    dev = [Requirement(text) for text in meta["optional-dependencies"]["dev"]]
    return {"runtime.lock": runtime, "dev.lock": runtime + dev}


@pytest.mark.parametrize("lock", ["runtime.lock", "dev.lock"])
def test_every_dependency_is_pinned_at_an_allowed_version(lock: str) -> None:
    pins = read_lock(LOCKS / lock)
    for requirement in project()[lock]:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, (
            f"{name} is not in requirements/{lock}: bash scripts/lock-requirements.sh"
        )
        assert requirement.specifier.contains(pins[name].version, prereleases=True), (
            f"{lock} pins {name}=={pins[name].version}, pyproject.toml wants {requirement}"
        )


@pytest.mark.parametrize("lock", ["runtime.lock", "dev.lock"])
def test_every_pin_carries_hashes(lock: str) -> None:
    for name, pin in read_lock(LOCKS / lock).items():
        assert pin.hashes >= 1, name


def test_dev_and_runtime_pins_agree() -> None:
    runtime, dev = (read_lock(LOCKS / lock) for lock in ("runtime.lock", "dev.lock"))
    assert {name: dev.get(name) for name in runtime} == runtime


def test_the_image_installs_dependencies_from_the_lock_before_the_sources() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lock_install = text.index("--require-hashes -r requirements/runtime.lock")
    for package in ("votecontract", "ingest", "processor"):
        assert lock_install < text.index(f"COPY {package} "), package
    # The project's own wheel, and the final install, resolve nothing beyond the lock.
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in text
    assert "pip install --no-index --no-deps /wheels/*.whl" in text


@pytest.mark.parametrize("script", [".ci/run", "Makefile"])
def test_ci_and_make_install_from_the_dev_lock(script: str) -> None:
    text = (ROOT / script).read_text()
    assert "--require-hashes -r requirements/dev.lock" in text
    assert "--no-deps" in text
    assert "install --quiet -e '.[dev]'" not in text


def test_the_wheel_carries_the_files_read_at_run_time(tmp_path: Path) -> None:
    """Built from what the Dockerfile copies, offline (setuptools comes from the dev lock)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("votecontract", "ingest", "processor"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--no-index", "--wheel-dir", str(wheels), str(source)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("vote_pipeline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in DATA_FILES:
        assert any(name.startswith(expected) for name in names), expected


def test_every_tool_the_makefile_runs_from_the_venv_comes_with_the_dev_lock() -> None:
    # `make mutation` once called a mutmut that no lock installed: the venv CI builds from
    # requirements/dev.lock must hold every $(VENV)/bin tool the Makefile names.
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    tools = set(re.findall(r"\$\(VENV\)/bin/([A-Za-z0-9_.-]+)", makefile))
    assert tools, "the Makefile names no venv tool: the pattern is out of date"
    bin_dir = Path(sys.executable).parent
    assert sorted(tool for tool in tools if not (bin_dir / tool).exists()) == []
