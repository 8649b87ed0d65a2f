"""`python -m ingest` as a child process, as the container runs it, and waiting for /readyz."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from votecontract.names import ENV_DATABASE_TIMEOUT_S, ENV_LOG_FORMAT, ENV_REDIS_TIMEOUT_S

# Long timeouts unless a test sets its own: on a loaded machine a Redis or PostgreSQL round
# trip can take longer than the production default, and a test must not see that as a 503.
PATIENT = {ENV_REDIS_TIMEOUT_S: "10", ENV_DATABASE_TIMEOUT_S: "10"}


def start_ingest(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest"],
        env={**os.environ, ENV_LOG_FORMAT: "json", **PATIENT, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(base_url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60  # generous: the machine may be loaded
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(base_url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail("ingest did not become ready")
