"""The CI version of `make loadtest`: real locust voters against a live ingest and the local
KEDA runner's processor Jobs, on a stream, Redis database and PostgreSQL database of the
test's own, for a few seconds; reconciliation must pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.databases import private_database
from tests.support.ingest_process import PATIENT
from votecontract.names import (
    ENV_DATABASE_URL,
    ENV_REDIS_URL,
    ENV_VOTE_GROUP,
    ENV_VOTE_STREAM,
    StreamNames,
)

pytestmark = pytest.mark.slow
MIN_VOTES = 200


@pytest.fixture
def empty_database() -> Iterator[str]:
    """No schema: the run applies the processor's migrations, as `make loadtest` does."""
    with private_database("smoke") as url:
        yield url


@pytest.mark.timeout(420)
def test_a_short_load_test_reconciles(
    redis_url: str,
    stream_names: StreamNames,
    redis_client: aioredis.Redis,  # deletes the test's keys afterwards
    empty_database: str,
    tmp_path: Path,
) -> None:
    env = os.environ | {
        ENV_REDIS_URL: redis_url,
        ENV_DATABASE_URL: empty_database,
        ENV_VOTE_STREAM: stream_names.stream,
        ENV_VOTE_GROUP: stream_names.group,
        **PATIENT,  # a loaded machine must not turn slow round trips into failed requests
    }
    summary_path = tmp_path / "summary.json"
    command = [sys.executable, "-m", "loadtest.run", "--start", "--users", "12"]
    command += ["--spawn-rate", "12", "--duration", "8s", "--polling-interval", "0.5"]
    command += ["--summary-json", str(summary_path), "--log", str(tmp_path / "pipeline.log")]
    # Bounded by votes as well as by time: a loaded machine that slows locust down still
    # produces MIN_VOTES to reconcile (the top step is held for them, at most 120 s more).
    command += ["--", "--think-time", "0.02,0.2", "--reconcile-timeout", "90"]
    command += ["--min-votes", str(MIN_VOTES)]
    command += ["--ledger-dir", str(tmp_path), "--only-summary"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=380)
    logs = (tmp_path / "pipeline.log").read_text(errors="replace")[-3000:]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:] + logs
    summary = json.loads(summary_path.read_text())
    assert summary["ok"] is True
    assert summary["failures"] == 0
    assert summary["accepted"] >= MIN_VOTES
    assert summary["recorded"] == summary["accepted"]
    assert "result                    OK" in done.stdout
