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
            ENV_REDIS_TIMEOUT_S: "5",
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
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            await admin.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
            votes = [
                asyncio.create_task(
                    client.post("/vote", json={"option": "cats", "voter_id": f"v{i}"})
                )
                for i in range(20)
            ]
            await asyncio.sleep(0.4)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.4)
            async with httpx.AsyncClient(base_url=base_url) as late_client:
                with pytest.raises(httpx.TransportError):
                    await late_client.post("/vote", json={"option": "cats"})
            responses = await asyncio.gather(*votes)
        returncode = await asyncio.to_thread(process.wait, 20)
        entries = dict(await admin.xrange("votes"))
    finally:
        await admin.aclose()
    assert [response.status_code for response in responses] == [202] * 20
    assert {response.json()["id"] for response in responses} == entries.keys()
    assert returncode == 0
    _, stderr = process.communicate()
    logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(log["msg"] == "ingest stopped" for log in logs)
