"""`python -m loadtest.run --start` as the smoke test runs it (real locust voters, ingest, the
local KEDA runner's Jobs, reconciliation at the end), in a given Redis topology."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from votecontract.names import (
    ENV_DATABASE_URL,
    ENV_REDIS_URL,
    ENV_VOTE_GROUP,
    ENV_VOTE_STREAM,
    StreamNames,
)


def load_run_command(
    tmp_path: Path,
    users: int = 12,
    duration: str = "8s",
    min_votes: int = 0,
    sweep_interval_s: float | None = None,
) -> list[str]:
    command = [sys.executable, "-m", "loadtest.run", "--start", "--users", str(users)]
    if sweep_interval_s is not None:
        command += ["--sweep-interval", str(sweep_interval_s)]
    command += ["--spawn-rate", str(users), "--duration", duration, "--polling-interval", "0.5"]
    command += ["--summary-json", str(tmp_path / "summary.json")]
    command += ["--log", str(tmp_path / "pipeline.log")]
    command += ["--", "--think-time", "0.02,0.2", "--reconcile-timeout", "60"]
    command += ["--ledger-dir", str(tmp_path), "--only-summary", "--min-votes", str(min_votes)]
    return command


def load_run_env(
    redis_url: str, database_url: str, names: StreamNames, topology: Mapping[str, str]
) -> dict[str, str]:
    return os.environ | {
        ENV_REDIS_URL: redis_url,
        ENV_DATABASE_URL: database_url,
        ENV_VOTE_STREAM: names.stream,
        ENV_VOTE_GROUP: names.group,
        **topology,
    }


def start_load_run(
    tmp_path: Path, env: dict[str, str], min_votes: int = 0, sweep_interval_s: float | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        load_run_command(tmp_path, min_votes=min_votes, sweep_interval_s=sweep_interval_s),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str], tmp_path: Path) -> tuple[int, str, dict[str, Any]]:
    """Exit status, output (with the pipeline log's tail) and the reconciled summary."""
    stdout, stderr = process.communicate(timeout=150)
    log = tmp_path / "pipeline.log"
    logs = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    summary_path = tmp_path / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return process.returncode, stdout[-4000:] + stderr[-4000:] + logs, summary


def assert_reconciled(code: int, output: str, summary: dict[str, object]) -> None:
    assert code == 0, output
    assert summary["ok"] is True, output
    assert summary["failures"] == 0, output
    accepted, recorded, uncertain = (summary[k] for k in ("accepted", "recorded", "uncertain"))
    assert isinstance(accepted, int), output
    assert isinstance(recorded, int), output
    assert isinstance(uncertain, int), output
    # Every 202 recorded; more only for requests whose outcome was unknown (a timeout, or a 503
    # after which Redis may have stored the vote: docs/ingest.md).
    assert accepted <= recorded <= accepted + uncertain, output
    assert summary["accepted"] > 0, output
    assert "result                    OK" in output
