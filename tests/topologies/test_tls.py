"""TLS in cluster and sentinel mode against real servers that speak only TLS and require
client certificates (a private CA made with openssl): every component under its own ACL user,
the sentinels reached over TLS with a user of their own, and a load test that reconciles."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from processor.scaledjob.lagmetric import read_lag
from processor.scaledjob.metricclient import metric_client
from processor.summary import Outcome
from tests.support.databases import private_database
from tests.support.ingest_app import running_app
from tests.support.loadrun import assert_reconciled, finished, load_run_env, start_load_run
from tests.support.redisacl import CLUSTER_EXTRA, ROLES, new_passwords, refused, role_lines
from tests.support.rediscluster import LocalCluster
from tests.support.redissentinel import MASTER_NAME, SENTINEL_USER_RULES, LocalSentinel
from tests.support.topologies import cast, drain, ingest_settings, job_settings
from votecontract.names import ENV_REDIS_MODE, ENV_VOTE_SHARDS, StreamNames
from votecontract.topology import RedisTopology

pytestmark = [pytest.mark.slow, pytest.mark.security]


@pytest.fixture
def cluster_users(tls_cluster: LocalCluster) -> Iterator[tuple[str, dict[str, str]]]:
    """Users `<role>-<tag>` on every node (ACLs are per node), deleted afterwards."""
    tag = uuid.uuid4().hex[:6]
    yield tag, new_passwords()
    for client in tls_cluster.clients():
        with client:
            client.execute_command("ACL", "DELUSER", *(f"{role}-{tag}" for role in ROLES))


@pytest.mark.redis_cluster
async def test_every_role_works_over_tls_on_a_sharded_cluster(
    tls_cluster: LocalCluster,
    tls_cluster_prefix: str,
    cluster_users: tuple[str, dict[str, str]],
    database_url: str,
    db: asyncpg.Connection,
) -> None:
    tag, passwords = cluster_users
    names = StreamNames(f"{tls_cluster_prefix}votes", "processors")
    topology = RedisTopology(mode="cluster", shards=3)
    lines = role_lines(names, 3, passwords)
    for client in tls_cluster.clients():
        with client:
            client.execute_command("ACL", "LOG", "RESET")
            for role in ROLES:
                rules = lines[role][1:]
                client.execute_command("ACL", "SETUSER", f"{role}-{tag}", *rules, *CLUSTER_EXTRA)

    def user_url(role: str) -> str:
        return tls_cluster.user_url(f"{role}-{tag}:{passwords[role]}@")

    settings = ingest_settings(user_url("ingest"), names, topology, database_url=database_url)
    votes = [("cats", f"tls-{i}") for i in range(30)]
    async with running_app(settings) as (_, client):
        ids = await cast(client, votes)
        assert len(ids) == len(votes)
        assert (await client.get(f"/votes/{ids[0]}")).json()["state"] == "pending"
    keda = metric_client(user_url("keda"), topology)
    try:
        lags = [(await read_lag(keda, s.stream, s.group)).metric for s in topology.streams(names)]
    finally:
        await keda.aclose()
    assert sum(lags) == len(votes)
    for shard in range(3):
        job = await drain(job_settings(user_url("processor"), database_url, names, topology, shard))
        assert job.summary.outcome is Outcome.DRAINED
    assert await db.fetchval("SELECT count(*) FROM vote_events") == len(votes)
    (old_layout,) = RedisTopology(mode="cluster").streams(names)  # the layout guard's look
    assert refused(tls_cluster.clients(), ignore=old_layout.stream) == []


@pytest.fixture
def sentinel_users(tls_sentinel: LocalSentinel) -> Iterator[tuple[str, dict[str, str]]]:
    """Users `<role>-<tag>` on both servers and `sentinel-<tag>` on every sentinel."""
    tag = uuid.uuid4().hex[:6]
    passwords = new_passwords() | {"sentinel": f"pw-sentinel-{uuid.uuid4().hex}"}
    yield tag, passwords
    for server in tls_sentinel.servers:
        with tls_sentinel.connect(server.port) as client:
            client.execute_command("ACL", "DELUSER", *(f"{role}-{tag}" for role in ROLES))
    for sentinel in tls_sentinel.sentinels:
        with sentinel.client() as client:
            client.execute_command("ACL", "DELUSER", f"sentinel-{tag}")


@pytest.mark.redis_sentinel
async def test_every_role_works_over_tls_behind_sentinel_with_a_sentinel_user(
    tls_sentinel: LocalSentinel,
    tls_sentinel_prefix: str,
    sentinel_users: tuple[str, dict[str, str]],
    database_url: str,
    db: asyncpg.Connection,
) -> None:
    tag, passwords = sentinel_users
    names = StreamNames(f"{tls_sentinel_prefix}votes", "processors")
    lines = role_lines(names, 1, passwords)
    for server in tls_sentinel.servers:  # ACLs are not replicated
        with tls_sentinel.connect(server.port) as client:
            client.execute_command("ACL", "LOG", "RESET")
            for role in ROLES:
                client.execute_command("ACL", "SETUSER", f"{role}-{tag}", *lines[role][1:])
    for sentinel in tls_sentinel.sentinels:
        with sentinel.client() as client:
            client.execute_command("ACL", "LOG", "RESET")
            password = f">{passwords['sentinel']}"
            client.execute_command("ACL", "SETUSER", f"sentinel-{tag}", "on", password,
                                   *SENTINEL_USER_RULES)  # fmt: skip
    topology = RedisTopology(
        mode="sentinel",
        sentinels=tuple(("127.0.0.1", s.port) for s in tls_sentinel.sentinels),
        sentinel_master=MASTER_NAME,
        sentinel_username=f"sentinel-{tag}",
        sentinel_password=passwords["sentinel"],
    )

    def user_url(role: str) -> str:
        return tls_sentinel.user_url(f"{role}-{tag}:{passwords[role]}@")

    settings = ingest_settings(user_url("ingest"), names, topology, database_url=database_url)
    async with running_app(settings) as (_, client):
        ids = await cast(client, [("dogs", f"s-{i}") for i in range(10)])
        assert len(ids) == 10
    keda = metric_client(user_url("keda"), topology)
    try:
        assert (await read_lag(keda, names.stream, names.group)).metric == 10
    finally:
        await keda.aclose()
    job = await drain(job_settings(user_url("processor"), database_url, names, topology))
    assert job.summary.outcome is Outcome.DRAINED
    assert await db.fetchval("SELECT count(*) FROM vote_events") == 10
    servers = (tls_sentinel.connect(s.port, decode_responses=True) for s in tls_sentinel.servers)
    assert refused(servers) == []
    assert refused(s.client() for s in tls_sentinel.sentinels) == []


@pytest.fixture
def empty_database() -> Iterator[str]:
    """No schema: the run applies the processor's migrations, as `make loadtest` does."""
    with private_database("topology-tls") as url:
        yield url


@pytest.mark.redis_cluster
@pytest.mark.timeout(180)
def test_a_load_test_reconciles_over_tls_on_the_cluster(
    tls_cluster: LocalCluster, tls_cluster_prefix: str, empty_database: str, tmp_path: Path
) -> None:
    names = StreamNames(f"{tls_cluster_prefix}votes", "processors")
    topology = {ENV_REDIS_MODE: "cluster", ENV_VOTE_SHARDS: "3"}
    env = load_run_env(tls_cluster.url, empty_database, names, topology)
    assert_reconciled(*finished(start_load_run(tmp_path, env), tmp_path))


@pytest.mark.redis_sentinel
@pytest.mark.timeout(180)
def test_a_load_test_reconciles_over_tls_behind_sentinel(
    tls_sentinel: LocalSentinel, tls_sentinel_prefix: str, empty_database: str, tmp_path: Path
) -> None:
    names = StreamNames(f"{tls_sentinel_prefix}votes", "processors")
    env = load_run_env(tls_sentinel.url, empty_database, names, tls_sentinel.environ())
    assert_reconciled(*finished(start_load_run(tmp_path, env), tmp_path))
