"""The shipped ACL users on a cluster (3 shards) and behind password-protected sentinels: each
component works under its own user, with only what docs/redis-topologies.md adds per mode."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import asyncpg
import pytest
import redis

from processor.summary import Outcome
from tests.support.ingest_app import running_app
from tests.support.redisacl import CLUSTER_EXTRA, ROLES, new_passwords, role_lines
from tests.support.rediscluster import LocalCluster
from tests.support.redissentinel import MASTER_NAME, LocalSentinel
from tests.support.topologies import cast, drain, ingest_settings, job_settings
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster_users(redis_cluster: LocalCluster) -> Iterator[tuple[str, dict[str, str]]]:
    """Users `<role>-<tag>` on every node (ACLs are per node), deleted afterwards."""
    tag = uuid.uuid4().hex[:6]
    yield tag, new_passwords()
    for client in redis_cluster.clients():
        with client:
            client.execute_command("ACL", "DELUSER", *(f"{role}-{tag}" for role in ROLES))


@pytest.mark.redis_cluster
async def test_each_role_works_under_its_own_user_on_a_sharded_cluster(
    redis_cluster: LocalCluster,
    cluster_prefix: str,
    cluster_users: tuple[str, dict[str, str]],
    database_url: str,
    db: asyncpg.Connection,
) -> None:
    tag, passwords = cluster_users
    names = StreamNames(f"{cluster_prefix}votes", "processors")
    topology = RedisTopology(mode="cluster", shards=3)
    lines = role_lines(names, 3, passwords)
    for client in redis_cluster.clients():
        with client:
            client.execute_command("ACL", "LOG", "RESET")
            for role in ROLES:
                rules = lines[role][1:]
                client.execute_command("ACL", "SETUSER", f"{role}-{tag}", *rules, *CLUSTER_EXTRA)
    port = redis_cluster.ports[0]

    def user_url(role: str) -> str:
        return f"redis://{role}-{tag}:{passwords[role]}@127.0.0.1:{port}/0"

    settings = ingest_settings(user_url("ingest"), names, topology, database_url=database_url)
    votes = [("cats", f"acl-{i}") for i in range(30)]
    async with running_app(settings) as (_, client):
        ids = await cast(client, votes)
        assert len(ids) == len(votes)
        assert (await client.get(f"/votes/{ids[0]}")).json()["state"] == "pending"
    for shard in range(3):
        settings_ = job_settings(user_url("processor"), database_url, names, topology, shard)
        job = await drain(settings_)
        assert job.summary.outcome is Outcome.DRAINED
    assert await db.fetchval("SELECT count(*) FROM vote_events") == len(votes)
    # The one refusal expected: the layout guard's look at the 1-shard layout's stream, which
    # these users were not granted (ingest logs that it could not check it).
    (old_layout,) = RedisTopology(mode="cluster").streams(names)
    denied = []
    for client in redis_cluster.clients():
        with client:
            log = client.execute_command("ACL", "LOG")
            denied += [
                entry
                for entry in log
                if "client|setinfo" not in str(entry) and entry["object"] != old_layout.stream
            ]
    assert denied == []


@pytest.mark.redis_sentinel
async def test_data_and_sentinel_credentials_are_used_behind_sentinel(
    fresh_sentinel: LocalSentinel, database_url: str, db: asyncpg.Connection
) -> None:
    """The data nodes' ACL user comes from REDIS_URL, the sentinels' from
    REDIS_SENTINEL_USERNAME/PASSWORD (password-protected sentinels refuse anyone else)."""
    names = StreamNames("votes", "processors")
    passwords = new_passwords()
    lines = role_lines(names, 1, passwords)
    for server in fresh_sentinel.servers:
        with redis.Redis(port=server.port) as node:
            for role in ROLES:
                node.execute_command("ACL", "SETUSER", *lines[role])
    sentinel_password = f"sentinel-{uuid.uuid4().hex[:8]}"
    for sentinel in fresh_sentinel.sentinels:
        with sentinel.client() as client:
            # Peers first (they authenticate to each other with it), then the sentinel's own.
            client.execute_command("SENTINEL", "CONFIG", "SET", "sentinel-pass", sentinel_password)
            client.execute_command(
                "ACL", "SETUSER", "default", "resetpass", f">{sentinel_password}"
            )
    topology = RedisTopology(
        mode="sentinel",
        sentinels=tuple(("127.0.0.1", s.port) for s in fresh_sentinel.sentinels),
        sentinel_master=MASTER_NAME,
        sentinel_password=sentinel_password,
    )

    def user_url(role: str) -> str:
        return f"redis://{role}:{passwords[role]}@sentinel-managed/0"

    settings = ingest_settings(user_url("ingest"), names, topology, database_url=database_url)
    async with running_app(settings) as (_, client):
        ids = await cast(client, [("dogs", f"s-{i}") for i in range(10)])
    assert len(ids) == 10
    job = await drain(job_settings(user_url("processor"), database_url, names, topology))
    assert job.summary.outcome is Outcome.DRAINED
    assert await db.fetchval("SELECT count(*) FROM vote_events") == 10
    wrong = RedisTopology(
        mode="sentinel",
        sentinels=topology.sentinels,
        sentinel_master=MASTER_NAME,
        sentinel_password="wrong",
    )
    settings = ingest_settings(user_url("ingest"), names, wrong, database_url=database_url)
    async with running_app(settings) as (_, client):
        assert (await client.get("/readyz")).status_code == 503
