"""`python -m processor` as a child process, the way a Kubernetes Job runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from processor.settings import ProcessorSettings
from votecontract.names import (
    ENV_BATCH_SIZE,
    ENV_CLAIM_MIN_IDLE_MS,
    ENV_CONSUMER_NAME,
    ENV_DATABASE_URL,
    ENV_LOG_FORMAT,
    ENV_MAX_DELIVERIES,
    ENV_REDIS_URL,
    ENV_RETRY_BACKOFF_MS,
    ENV_VOTE_GROUP,
    ENV_VOTE_STREAM,
)


def job_env(settings: ProcessorSettings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            ENV_REDIS_URL: settings.redis_url,
            ENV_DATABASE_URL: settings.database_url,
            ENV_VOTE_STREAM: settings.names.stream,
            ENV_VOTE_GROUP: settings.names.group,
            ENV_CONSUMER_NAME: settings.consumer,
            ENV_BATCH_SIZE: str(settings.batch_size),
            ENV_CLAIM_MIN_IDLE_MS: str(settings.claim_min_idle_ms),
            ENV_MAX_DELIVERIES: str(settings.max_deliveries),
            ENV_RETRY_BACKOFF_MS: "20",
            ENV_LOG_FORMAT: "json",
        }
    )
    env.update(extra)
    return env


def start_job(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "processor"], env=env, stderr=sink)


def is_stopped(proc: subprocess.Popen[bytes]) -> bool:
    """True once the process froze itself with SIGSTOP (state T in /proc)."""
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] in ("T", "t")


def wait_until_stopped_or_done(proc: subprocess.Popen[bytes], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_stopped(proc):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the Job neither stopped nor finished")


def wait_until_ready_or_done(
    proc: subprocess.Popen[bytes], ready_file: Path, timeout: float = 60
) -> None:
    """Until the Job's readiness marker exists (its first read succeeded) or it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready_file.exists() or proc.poll() is not None:
            return
        time.sleep(0.005)
    raise AssertionError("the Job neither became ready nor finished")


def summary_lines(log: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("msg") == "job finished"]
