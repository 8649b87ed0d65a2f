"""Shared fixtures: a private Postgres database per test session and a private Redis key space
per test, on the real servers, so tests never touch a developer's running instance."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import settings

from tests.support.databases import (
    drop_orphaned_databases,
    emptied_vote_database,
    migrated_database,
    private_database,
)
from tests.support.rediscluster import LocalCluster
from tests.support.redissentinel import LocalSentinel
from tests.support.servers import TEST_REDIS_URL, ThrowawayRedis, free_port, running
from votecontract.names import StreamNames

# In CI every property test replays the same examples (a failure means a change broke
# something, not an unlucky draw); locally each run explores new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session", autouse=True)
def no_orphaned_databases() -> None:
    """Drop the databases of earlier runs that were killed before their cleanup. Without
    PostgreSQL (a run of unit tests only) there is nothing to drop: logged, not an error."""
    try:
        asyncio.run(drop_orphaned_databases())
    except (OSError, asyncpg.PostgresError) as exc:  # TimeoutError is an OSError
        logging.getLogger(__name__).warning("orphaned test databases not dropped: %r", exc)


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
    """A key prefix of this test's own; every key holding it is deleted afterwards, whichever
    client (the app under test, a Job subprocess) wrote it, hash-tagged shard keys
    (`{<prefix>votes:0}`) included."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
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


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(port=free_port(), workdir=tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A private database of this session with the processor schema, dropped at the end.

    Not the shared `pg_database_url`: other tests rely on that one starting empty.
    """
    with migrated_database("processor") as url:
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the migrated database, its tables emptied first."""
    async with emptied_vote_database(database_url) as conn:
        yield conn


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A Redis Cluster (3 masters, 3 replicas) shared by the session: tests use their own key
    prefix (`cluster_prefix`) and must leave it healthy (`wait_healthy` after a failover)."""
    with running(LocalCluster(tmp_path_factory.mktemp("redis-cluster"))) as cluster:
        yield cluster


@pytest.fixture
def cluster_prefix(redis_cluster: LocalCluster) -> Iterator[str]:
    """A key prefix of this test's own on the cluster; its keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    redis_cluster.delete_keys(f"*{prefix}*")


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSentinel]:
    """A master, a replica and three sentinels shared by the session; tests that fail over use
    `fresh_sentinel` instead."""
    with running(LocalSentinel(tmp_path_factory.mktemp("redis-sentinel"))) as setup:
        yield setup


@pytest.fixture
def fresh_sentinel(tmp_path: Path) -> Iterator[LocalSentinel]:
    """A sentinel setup of this test's own, which it may fail over or kill parts of."""
    with running(LocalSentinel(tmp_path / "sentinel")) as setup:
        yield setup


@pytest.fixture
def sentinel_prefix(redis_sentinel: LocalSentinel) -> Iterator[str]:
    """A key prefix of this test's own on the shared sentinel setup's master."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    redis_sentinel.delete_keys(f"*{prefix}*")
