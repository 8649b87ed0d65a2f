"""Fixtures for the read side (results, vote status, stream, page): a database migrated by the
processor's migrations, emptied before each test, the ingest app with its lifespan, and a live
uvicorn server."""

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
from ingest.names import StreamNames
from ingest.settings import IngestSettings
from tests.conftest import emptied_vote_database, free_port, migrated_database

OPTIONS = ("cats", "dogs")


@pytest.fixture(scope="session")
def read_database_url() -> Iterator[str]:
    """A database of this session's own with the vote schema, dropped at the end.

    Not `pg_database_url`: these tests empty the tables before each test, which must not
    disturb what the processor's tests keep there."""
    with migrated_database("read") as url:
        yield url


@pytest.fixture
async def pg(read_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the read database, emptied first (tests run one at a time)."""
    async with emptied_vote_database(read_database_url) as conn:
        yield conn


@pytest.fixture
def read_settings(
    read_database_url: str, redis_url: str, stream_names: StreamNames
) -> IngestSettings:
    return IngestSettings(
        database_url=read_database_url,
        redis_url=redis_url,
        names=stream_names,
        options=OPTIONS,
        results_poll_s=0.1,
        sse_heartbeat_s=1.0,
        backlog_refresh_s=0.1,
    )


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


@pytest.fixture
async def read_http(read_settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with read_client(read_settings) as http:
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
        deadline = time.monotonic() + 10
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
