"""The chart's sentinel mode on the real control plane, with the real KEDA operator: KEDA's
`redis-sentinel-streams` trigger asks the sentinels for the master as the sentinels' own ACL
user and polls the master as the `keda` user; ingest and the Jobs find the master the same
way, each as its own user; every vote is recorded once. Redis is a master, a replica and three
sentinels of the test's own (plain TCP: TLS behind sentinels is tests/topologies/test_tls.py),
with the chart's ACL users on both servers (ACLs are not replicated) and AOF fsync on each, as
the chart's default ACK_DURABILITY=fsync needs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.cluster import (
    Cluster,
    ReleaseServers,
    keda_lines,
    keda_polls,
    start_release_servers,
    stop_release_servers,
    wait_for,
)
from tests.support.clusterrelease import (
    finished,
    ingest_address,
    install,
    post_votes,
    processor_jobs,
    recorded,
    votes_recorded,
)
from tests.support.redisacl import ROLES, role_lines
from tests.support.redissentinel import MASTER_NAME, SENTINEL_USER_RULES, LocalSentinel
from tests.support.servers import running
from votecontract.names import StreamNames

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

HELM = "4"
NAMESPACE, RELEASE = "votes-sentinel", "votes"
SCALEDJOB = f"{RELEASE}-vote-pipeline-processor"
SENTINEL_USER, SENTINEL_PASSWORD = "votes-sentinel", "sentinel-pw-:@/%#?"
ADMIN_PASSWORD = "sentinel-admin-pw"  # the test's own login to the sentinels (user default)
FSYNC_EVERY_WRITE = {
    "appendonly": "yes",
    "appendfsync": "always",
    "no-appendfsync-on-rewrite": "no",
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReleaseServers]:
    """The release's PostgreSQL database and roles (and the ACL passwords of its users)."""
    started = start_release_servers(tmp_path_factory.mktemp("release-sentinel"), "sentinel")
    try:
        yield started
    finally:
        stop_release_servers(started)


@pytest.fixture(scope="module")
def sentinel(
    servers: ReleaseServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSentinel]:
    with running(LocalSentinel(tmp_path_factory.mktemp("sentinel") / "setup")) as setup:
        lines = role_lines(StreamNames(), 1, servers.passwords)
        for server in setup.servers:
            with setup.connect(server.port) as client:
                for name, value in FSYNC_EVERY_WRITE.items():
                    client.config_set(name, value)
                for role in ROLES:
                    client.execute_command("ACL", "SETUSER", role, *lines[role][1:])
        for process in setup.sentinels:
            with process.client() as client:
                client.execute_command("ACL", "SETUSER", SENTINEL_USER, "on",
                                       f">{SENTINEL_PASSWORD}", *SENTINEL_USER_RULES)  # fmt: skip
                # The sentinels log in to each other from now on...
                client.execute_command("SENTINEL", "CONFIG", "SET", "sentinel-user", "default")
                client.execute_command("SENTINEL", "CONFIG", "SET", "sentinel-pass", ADMIN_PASSWORD)
        for process in setup.sentinels:
            with process.client() as client:
                # ...and so must every client: one that ignored sentinelUsername gets NOAUTH.
                client.execute_command(
                    "ACL", "SETUSER", "default", "resetpass", f">{ADMIN_PASSWORD}"
                )
        yield setup


@pytest.fixture(scope="module")
def release(
    cluster: Cluster,
    servers: ReleaseServers,
    sentinel: LocalSentinel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    values = servers.values(
        externalRedis={
            "address": "sentinel-managed:6379",  # unused in sentinel mode
            "sentinels": sentinel.addresses,
            "sentinelMaster": MASTER_NAME,
            "sentinelUsername": SENTINEL_USER,
            "sentinelPassword": SENTINEL_PASSWORD,
        },
        config={"redisMode": "sentinel"},
        processor={"lagCount": 50, "maxReplicaCount": 4},
    )
    offset = cluster.keda_log().stat().st_size
    install(cluster, HELM, RELEASE, NAMESPACE, values, values_path(tmp_path_factory))
    values["keda_log_offset"] = offset
    yield values
    cluster.helm(HELM, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def values_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("values-sentinel") / "values.json"


def test_keda_polls_through_the_sentinels_and_every_vote_is_recorded_once(
    cluster: Cluster, servers: ReleaseServers, sentinel: LocalSentinel, release: dict[str, Any]
) -> None:
    since = release["keda_log_offset"]
    wait_for("KEDA's first poll", lambda: keda_polls(cluster.keda_log(), SCALEDJOB, since))
    accepted = len(asyncio.run(post_votes(ingest_address(cluster, NAMESPACE), 300)))
    wait_for(f"{accepted} votes recorded", lambda: votes_recorded(servers) >= accepted)
    assert asyncio.run(recorded(servers.pg_url("app"))) == (accepted,) * 3, "lost or doubled"
    wait_for("every Job finished", lambda: all(map(finished, processor_jobs(cluster, NAMESPACE))))
    polls = keda_polls(cluster.keda_log(), SCALEDJOB, since)
    assert sum(p.created for p in polls) >= 1, polls
    assert max(p.queue_length for p in polls) >= 1, "KEDA never saw the lag"
    errors = [
        line
        for line in keda_lines(cluster.keda_log(), since)
        if SCALEDJOB in line and NAMESPACE in line and '"level":"error"' in line
    ]
    assert errors == [], errors[:3]
    with sentinel.connect(master_port(sentinel), decode_responses=True) as master:
        assert refusals(master) == [], "a role was refused on the master"
        users = {client.get("user") for client in master.client_list()}
        assert {"keda", "ingest"} <= users, users
        group = master.xinfo_groups("votes")[0]
        assert (group["lag"], group["pending"]) == (0, 0), group
    for process in sentinel.sentinels:
        with admin(process.port) as client:
            assert refusals(client) == [], "a login to a sentinel was refused a command"


def refusals(client: redis.Redis) -> list[object]:
    """ACL LOG entries but for redis-py's CLIENT SETINFO (allowed to fail)."""
    entries: list[dict[str, Any]] = client.execute_command("ACL", "LOG")
    return [entry for entry in entries if "client|setinfo" not in str(entry)]


def admin(port: int) -> redis.Redis:
    return redis.Redis(
        port=port, username="default", password=ADMIN_PASSWORD, decode_responses=True
    )


def master_port(sentinel: LocalSentinel) -> int:
    """The master's port, as the first sentinel names it (they require a login now)."""
    with admin(sentinel.sentinels[0].port) as client:
        return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])
