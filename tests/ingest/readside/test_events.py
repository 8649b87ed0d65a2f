from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from ingest.app import create_app
from ingest.readside.database import DatabaseUnavailableError
from ingest.readside.events import ResultsBroadcaster
from ingest.readside.results import Results, build_results
from ingest.settings import IngestSettings
from tests.support.ingest_process import PATIENT
from tests.support.polling import eventually
from tests.support.readside import OPTIONS, live_server, record_vote
from tests.support.servers import free_port
from votecontract.names import (
    ENV_DATABASE_URL,
    ENV_LOG_FORMAT,
    ENV_PORT,
    ENV_REDIS_URL,
    ENV_VOTE_STREAM,
)

# Waits are bounded generously: only a real failure reaches the bound, never a slow machine.
BOUND_S = 60


class FakeSource:
    """Results with a settable tally; counts how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0
        self.tally: dict[str, int] = {}
        self.failing = False

    async def __call__(self) -> Results:
        self.calls += 1
        if self.failing:
            raise DatabaseUnavailableError("down")
        return build_results(OPTIONS, dict(self.tally), 0, datetime.now(UTC))


async def _take(updates: AsyncIterator[Results], count: int) -> list[Results]:
    return [await anext(updates) for _ in range(count)]


async def test_subscribers_share_one_poll() -> None:
    source = FakeSource()
    broadcaster = ResultsBroadcaster(source, interval_s=60)
    streams = [broadcaster.updates() for _ in range(10)]
    firsts = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), BOUND_S)
    assert source.calls == 1
    assert all(first is firsts[0] for first in firsts)
    assert broadcaster.subscribers == 10
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]
    assert broadcaster.subscribers == 0
    await broadcaster.close()


async def test_only_changes_are_published() -> None:
    source = FakeSource()
    broadcaster = ResultsBroadcaster(source, interval_s=0.01)
    updates = broadcaster.updates()
    first = await asyncio.wait_for(anext(updates), BOUND_S)
    calls = source.calls
    source.tally = {"cats": 1}
    second = await asyncio.wait_for(anext(updates), BOUND_S)
    assert (first.total, second.total) == (0, 1)
    assert source.calls > calls  # unchanged polls in between published nothing
    await broadcaster.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(updates), BOUND_S)


async def test_polling_stops_when_nobody_listens_and_resumes_fresh() -> None:
    source = FakeSource()
    broadcaster = ResultsBroadcaster(source, interval_s=0.01)
    updates = broadcaster.updates()
    await asyncio.wait_for(anext(updates), BOUND_S)
    await updates.aclose()  # type: ignore[attr-defined]
    await _eventually(lambda: not broadcaster.polling)  # the poller ended: nothing polls
    source.tally = {"dogs": 2}
    again = broadcaster.updates()
    assert (await asyncio.wait_for(anext(again), BOUND_S)).total == 2
    await broadcaster.close()


async def test_database_trouble_keeps_subscribers_waiting() -> None:
    source = FakeSource()
    source.failing = True
    broadcaster = ResultsBroadcaster(source, interval_s=0.01)
    updates = broadcaster.updates()
    pending = asyncio.ensure_future(anext(updates))
    await _eventually(lambda: source.calls >= 3)  # failed polls, each followed by another
    assert not pending.done()
    source.failing = False
    assert (await asyncio.wait_for(pending, BOUND_S)).total == 0
    await broadcaster.close()


async def _events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """SSE events as field dicts; comment lines (heartbeats) as {"comment": ...}."""
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line:
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
        elif event:
            yield event
            event = {}


async def _next_results(events: AsyncIterator[dict[str, str]]) -> dict[str, Any]:
    async for event in events:
        if event.get("event") == "results":
            body: dict[str, Any] = json.loads(event["data"])
            return body
    raise AssertionError("stream ended")


async def test_stream_sends_results_on_change_and_heartbeats(
    read_settings: IngestSettings, pg: asyncpg.Connection
) -> None:
    with live_server(create_app(read_settings)) as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=BOUND_S) as http,
            http.stream("GET", "/results/stream") as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _events(response)
            first = await asyncio.wait_for(_next_results(events), BOUND_S)
            assert first["total"] == 0
            await record_vote(pg, "10-0", "dogs", "v1")
            second = await asyncio.wait_for(_next_results(events), BOUND_S)
            assert [o["votes"] for o in second["options"]] == [0, 1]
            comment = await asyncio.wait_for(
                anext(e async for e in events if "comment" in e), BOUND_S
            )
            assert comment["comment"].startswith("ping")


@pytest.mark.usefixtures("pg")
async def test_client_disconnect_ends_its_subscription(read_settings: IngestSettings) -> None:
    app = create_app(read_settings)
    with live_server(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=BOUND_S) as http:
            async with http.stream("GET", "/results/stream") as response:
                await asyncio.wait_for(_next_results(_events(response)), BOUND_S)
                assert app.state.read_side.services.broadcaster.subscribers == 1
            broadcaster = app.state.read_side.services.broadcaster
            await _eventually(lambda: broadcaster.subscribers == 0)
            assert app.state.read_side.services.broadcaster.subscribers == 0


@pytest.mark.usefixtures("pg")
async def test_sigterm_ends_open_streams_and_the_server_exits(
    read_settings: IngestSettings,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        ENV_DATABASE_URL: read_settings.database_url,
        ENV_REDIS_URL: read_settings.redis_url,
        ENV_VOTE_STREAM: read_settings.names.stream,
        ENV_PORT: str(port),
        ENV_LOG_FORMAT: "text",
        **PATIENT,
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ingest", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=BOUND_S) as http:
            await _wait_until_serving(http)
            async with http.stream("GET", "/results/stream") as response:
                events = _events(response)
                await asyncio.wait_for(_next_results(events), BOUND_S)
                server.send_signal(signal.SIGTERM)
                rest = [e async for e in events if "comment" not in e]
        assert rest == []  # the stream ended cleanly instead of holding up the shutdown
        _, stderr = await asyncio.wait_for(server.communicate(), BOUND_S)
        assert server.returncode == 0
        assert b"without completing response" not in stderr
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def _wait_until_serving(http: httpx.AsyncClient) -> None:
    async def serving() -> bool:
        try:
            await http.get("/results")
        except httpx.TransportError:
            return False
        return True

    await eventually(serving, "the server answers", every_s=0.1)


async def _eventually(condition: Callable[[], bool]) -> None:
    async def holds() -> bool:
        return condition()

    await eventually(holds, "condition")
