"""`helm test` checks the deployed pipeline without changing it: its pod's script, as the chart
renders it, runs against a real `python -m ingest` (on the real Redis and PostgreSQL) and
passes, and the stream and the tally are exactly as before."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import pytest
import redis

from tests.support.helmchart import HELM_VERSIONS, NAMESPACE, Manifest, find, render
from tests.support.ingest_process import start_ingest, wait_ready
from tests.support.servers import free_port
from votecontract.names import (
    ENV_ACK_DURABILITY,
    ENV_DATABASE_URL,
    ENV_HOST,
    ENV_PORT,
    ENV_REDIS_URL,
    ENV_VOTE_GROUP,
    ENV_VOTE_STREAM,
    StreamNames,
)

pytestmark = pytest.mark.helm


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    # A short timeout: a test pod that waits for a vote to be processed fails fast here.
    return render(HELM_VERSIONS[0], "--set", "tests.timeoutSeconds=2")


@pytest.fixture
def ingest_url(
    manifests: list[Manifest], redis_url: str, database_url: str, stream_names: StreamNames
) -> Iterator[str]:
    """`python -m ingest` with the release's ConfigMap, on a private stream."""
    port = free_port()
    env = dict(find(manifests, "ConfigMap", "vote-pipeline")["data"])
    env |= {ENV_HOST: "127.0.0.1", ENV_PORT: str(port), ENV_REDIS_URL: redis_url}
    env |= {ENV_DATABASE_URL: database_url, ENV_VOTE_STREAM: stream_names.stream}
    env |= {ENV_VOTE_GROUP: stream_names.group}
    # The release asks for fsync durability, which the test Redis (no AOF) cannot give; the
    # helm test's checks read and refuse, they never depend on it.
    env |= {ENV_ACK_DURABILITY: "memory"}
    process = start_ingest(env)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, process)
        yield base_url
    finally:
        process.kill()
        process.communicate(timeout=10)


def tally(database_url: str) -> list[tuple[str, int]]:
    async def read() -> list[tuple[str, int]]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch("SELECT option, votes FROM tally ORDER BY option")
        finally:
            await conn.close()
        return [(row["option"], row["votes"]) for row in rows]

    return asyncio.run(read())


def run_script(command: list[str], args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", command[2], *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def stream_state(redis_url: str, names: StreamNames) -> tuple[int, str]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return client.xlen(names.stream), str(client.xinfo_groups(names.stream))


def test_helm_test_passes_and_changes_nothing(
    manifests: list[Manifest],
    ingest_url: str,
    redis_url: str,
    database_url: str,
    stream_names: StreamNames,
) -> None:
    pod = find(manifests, "Pod")
    command = pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["python", "-c"]
    service_url = f"http://vote-pipeline.{NAMESPACE}.svc:80"
    args = [ingest_url if arg == service_url else arg for arg in command[3:]]
    assert ingest_url in args
    before = (stream_state(redis_url, stream_names), tally(database_url))
    done = run_script(command, args)
    assert done.returncode == 0, done.stdout + done.stderr
    after = (stream_state(redis_url, stream_names), tally(database_url))
    assert after == before


def test_helm_test_fails_when_the_options_differ(
    manifests: list[Manifest], ingest_url: str
) -> None:
    """The check compares what ingest accepts with what the release configured."""
    command = find(manifests, "Pod")["spec"]["containers"][0]["command"]
    service_url = f"http://vote-pipeline.{NAMESPACE}.svc:80"
    args = [ingest_url if arg == service_url else arg for arg in command[3:]]
    args = [arg if arg != "cats,dogs" else "cats,dogs,birds" for arg in args]
    done = run_script(command, args)
    assert done.returncode != 0
    assert "birds" in done.stderr
