"""`python -m ingest` as a process: serving, failing fast on bad settings, draining on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as aioredis

from tests.support.ingest_process import start_ingest, wait_ready
from tests.support.polling import eventually
from tests.support.servers import ThrowawayRedis, free_port
from votecontract.names import (
    ENV_PORT,
    ENV_REDIS_TIMEOUT_S,
    ENV_REDIS_URL,
    ENV_VOTE_STREAM,
)


@pytest.fixture
def ingest_process(throwaway_redis: ThrowawayRedis) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = start_ingest(
        {
            ENV_REDIS_URL: throwaway_redis.url,
            ENV_PORT: str(port),
            ENV_VOTE_STREAM: "votes",
            ENV_REDIS_TIMEOUT_S: "60",  # writes wait for the test's UNPAUSE, not a timeout
        }
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, process)
        yield base_url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_a_bad_setting_stops_the_process_naming_the_variable() -> None:
    process = start_ingest({ENV_PORT: "eighty"})
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert ENV_PORT in stderr


async def test_sigterm_finishes_the_writes_in_flight_then_exits_0(
    ingest_process: tuple[str, subprocess.Popen[str]], throwaway_redis: ThrowawayRedis
) -> None:
    base_url, process = ingest_process
    admin = aioredis.Redis.from_url(throwaway_redis.url, decode_responses=True)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
            # Writes are held at Redis until the server has stopped taking connections.
            await admin.execute_command("CLIENT", "PAUSE", "600000", "WRITE")
            votes = [
                asyncio.create_task(
                    client.post("/vote", json={"option": "cats", "voter_id": f"v{i}"})
                )
                for i in range(20)
            ]
            await eventually(lambda: write_held(admin), "a vote's XADD held by the pause")
            process.send_signal(signal.SIGTERM)
            await eventually(lambda: refuses_connections(base_url), "the listener closed")
            await admin.execute_command("CLIENT", "UNPAUSE")
            outcomes = await asyncio.gather(*votes, return_exceptions=True)
        returncode = await asyncio.to_thread(process.wait, 60)
        entries = dict(await admin.xrange("votes"))
    finally:
        await admin.aclose()
    # A request that reached the server before SIGTERM gets its 202; one that came after
    # found the listener closed (it never reached the app). Nothing else.
    answered = [o for o in outcomes if isinstance(o, httpx.Response)]
    assert all(isinstance(o, httpx.ConnectError) for o in outcomes if o not in answered)
    assert answered  # at least the held write was in flight at SIGTERM
    assert [response.status_code for response in answered] == [202] * len(answered)
    assert {response.json()["id"] for response in answered} == entries.keys()
    assert returncode == 0
    _, stderr = process.communicate()
    logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(log["msg"] == "ingest stopped" for log in logs)


async def write_held(admin: aioredis.Redis) -> bool:
    return bool((await admin.info("clients"))["blocked_clients"])


async def refuses_connections(base_url: str) -> bool:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as late_client:
        try:
            await late_client.get("/healthz")
        except httpx.ConnectError:
            return True
    return False
