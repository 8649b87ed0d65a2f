"""Run a scripts/install-*.sh that fills a cache directory and prints it last."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.paths import ROOT


def installed_dir(script: str) -> Path:
    """Run scripts/`script` (no stdin, at most 5 minutes); the directory it printed last."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / script)],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    return Path(done.stdout.strip().splitlines()[-1])
