"""Shared fixtures: a private Postgres database per test session and a private Redis key space
per test, on the real servers, so tests never touch a developer's running instance."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import settings

from ingest.names import StreamNames
from processor.migrate import migrate

# Fixtures of the read side (results, vote status, live stream, page).
pytest_plugins = ["tests.read_fixtures"]

# In CI every property test replays the same examples (a failure means a change broke
# something, not an unlucky draw); locally each run explores new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_PG_ADMIN_URL = os.environ.get(
    "TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _dsn_with_database(admin_url: str, database: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{database}"


async def _admin_execute(sql: str) -> None:
    conn = await asyncpg.connect(TEST_PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def private_database(label: str) -> Iterator[str]:
    """An empty database of the caller's own, dropped at the end."""
    name = f"vote_test_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield _dsn_with_database(TEST_PG_ADMIN_URL, name)
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def migrated_database(label: str) -> Iterator[str]:
    """A private database with the processor's migrations applied. Tests that record votes
    use one: `pg_database_url` must stay empty for others, and entry IDs of different test
    streams may coincide."""
    with private_database(label) as url:
        asyncio.run(migrate(url))
        yield url


VOTE_TABLES = "vote_events, ballots, tally, dead_letters"


async def empty_vote_tables(conn: asyncpg.Connection) -> None:
    await conn.execute(f"TRUNCATE {VOTE_TABLES}")


@asynccontextmanager
async def emptied_vote_database(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a migrated database whose vote tables were just emptied."""
    conn = await asyncpg.connect(url)
    try:
        await empty_vote_tables(conn)
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """An empty database of this test session's own, dropped at the end."""
    with private_database("session") as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    return TEST_REDIS_URL


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards, whichever
    client (the app under test, a Job subprocess) wrote it."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def stream_names(key_prefix: str) -> StreamNames:
    """Stream and group names no other test (or developer instance) uses."""
    return StreamNames(stream=f"{key_prefix}votes", group="processors")


@pytest.fixture
async def redis_client(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client on the test Redis database (`key_prefix` deletes this test's keys)."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ThrowawayRedis:
    """A redis-server of a test's own, which the test may stop and start again."""

    port: int
    workdir: Path
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir), *self.extra_args]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        self._wait_until_listening()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        pytest.fail(f"throwaway redis-server did not listen on {self.port}")


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(port=free_port(), workdir=tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
