"""schemathesis against the live ingest's /openapi.json: no 5xx, and every response conforms
to the schema (status codes, content types, headers, bodies), over a bounded number of cases.

/results/stream is excluded: it is an endless text/event-stream, which a request/response
checker can only time out on (tests/ingest/readside/test_events.py covers it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.ingest_process import start_ingest, wait_ready
from tests.support.servers import free_port
from votecontract.names import (
    ENV_DATABASE_URL,
    ENV_PORT,
    ENV_REDIS_URL,
    ENV_VOTE_STREAM,
    StreamNames,
)

pytestmark = pytest.mark.security

MAX_EXAMPLES = 30  # per operation and phase: about 370 cases, 10-15 s
# CI replays one fixed seed, so a run fails only for a change, not for the draw; set
# SCHEMATHESIS_SEED=random locally to explore new cases.
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261130")


@pytest.fixture
def live_ingest(
    redis_url: str, redis_client: aioredis.Redis, stream_names: StreamNames, database_url: str
) -> Iterator[str]:
    port = free_port()
    env = {ENV_REDIS_URL: redis_url, ENV_PORT: str(port), ENV_DATABASE_URL: database_url}
    process = start_ingest({**env, ENV_VOTE_STREAM: stream_names.stream})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_the_live_api_conforms_to_its_openapi_schema(live_ingest: str, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).parent / "st"), "run", f"{live_ingest}/openapi.json",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES),
        "--exclude-path", "/results/stream", "--request-timeout", "30",
        "--generation-database", "none",
        *([] if SEED == "random" else ["--seed", SEED]),
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    assert cases is not None, output
    assert int(cases[1]) == int(cases[2]) >= 100, output
    print(f"schemathesis: {cases[1]} cases passed")  # shown with pytest -rP
