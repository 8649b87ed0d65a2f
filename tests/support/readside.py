"""Helpers of the read-side tests: votes recorded as the processor records them, an in-process
client of the ingest app, a live uvicorn server."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from ingest.app import create_app
from ingest.settings import IngestSettings
from tests.support.servers import free_port

OPTIONS = ("cats", "dogs")


def split_id(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


async def record_vote(conn: asyncpg.Connection, entry_id: str, option: str, voter: str) -> None:
    """Write one vote as the processor does: event, latest ballot by stream ID, tally."""
    ms, seq = split_id(entry_id)
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO vote_events (entry_ms, entry_seq, option, voter_id, accepted_at)"
            " VALUES ($1, $2, $3, $4, now())",
            ms,
            seq,
            option,
            voter,
        )
        old = await conn.fetchrow(
            "SELECT option, entry_ms, entry_seq FROM ballots WHERE voter_id = $1", voter
        )
        if old is not None and (old["entry_ms"], old["entry_seq"]) > (ms, seq):
            return
        if old is not None:
            await conn.execute("UPDATE tally SET votes = votes - 1 WHERE option = $1", old[0])
        await conn.execute(
            "INSERT INTO ballots (voter_id, option, entry_ms, entry_seq) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (voter_id) DO UPDATE SET option = $2, entry_ms = $3, entry_seq = $4",
            voter,
            option,
            ms,
            seq,
        )
        await conn.execute(
            "INSERT INTO tally (option, votes) VALUES ($1, 1)"
            " ON CONFLICT (option) DO UPDATE SET votes = tally.votes + 1",
            option,
        )


@asynccontextmanager
async def read_client(settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the ingest app, its lifespan running."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        yield http


class LiveServer:
    """uvicorn serving `app` on a free loopback port in a thread of its own."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 60  # generous: the machine may be loaded
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                pytest.fail("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)


@contextlib.contextmanager
def live_server(app: Starlette) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()
