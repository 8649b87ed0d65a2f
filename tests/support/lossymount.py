"""Mounting tests/support/lossyfs.py for a test, and pulling the plug on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.lossyfs import UNSYNCED_XATTR


def fuse_unavailable() -> str | None:
    """Why a FUSE file system cannot be mounted here, or None."""
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse (the kernel or the container offers no FUSE)"
    if shutil.which("fusermount3") is None:
        return "fusermount3 missing (apt-get install fuse3)"
    return None


@dataclass
class LossyMount:
    """`backing` is the disk; `mountpoint` what processes use. `crash()` loses the unsynced."""

    backing: Path
    mountpoint: Path
    process: subprocess.Popen[bytes] | None = None

    def mount(self) -> None:
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "tests.support.lossyfs"]
        self.process = subprocess.Popen([*command, str(self.backing), str(self.mountpoint)])
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mountpoint):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.crash()
                pytest.fail(f"lossyfs did not mount {self.mountpoint}")
            time.sleep(0.01)

    def crash(self) -> None:
        """SIGKILL the file system (its unsynced data dies with it), then unmount."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
        if os.path.ismount(self.mountpoint) or _is_dead_mount(self.mountpoint):
            subprocess.run(["umount", "-l", str(self.mountpoint)], check=False)

    def unsynced_writes(self, path: Path) -> int:
        return int(os.getxattr(path, UNSYNCED_XATTR))


def _is_dead_mount(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError:
        return True  # "Transport endpoint is not connected"
    return False
