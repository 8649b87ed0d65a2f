"""The chart's cluster mode on the real control plane, with the real KEDA operator: a Redis
Cluster of the test's own (3 masters, 3 replicas; plain TCP: TLS on a cluster is
tests/topologies/test_tls.py), the votes sharded over three streams, one ScaledJob per shard
on KEDA's `redis-cluster-streams` trigger. The chart's ACL users are on every node (ACLs are
per node) with the extra rules docs/redis-topologies.md gives for cluster mode, and AOF fsync
on every node, as the chart's default ACK_DURABILITY=fsync needs. Every vote is recorded once
and no node refuses any command of any user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.cluster import Cluster, ReleaseServers, keda_errors, keda_polls, wait_for
from tests.support.clusterrelease import installed, post_and_record_once
from tests.support.redisacl import CLUSTER_EXTRA, ROLES, refused, role_lines
from tests.support.rediscluster import LocalCluster
from tests.support.servers import running
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

HELM = "4"
NAMESPACE, RELEASE, SHARDS = "votes-rcluster", "votes", 3
SCALEDJOBS = [f"{RELEASE}-vote-pipeline-processor-{shard}" for shard in range(SHARDS)]
FSYNC_EVERY_WRITE = {
    "appendonly": "yes",
    "appendfsync": "always",
    "no-appendfsync-on-rewrite": "no",
}


@pytest.fixture(scope="module")
def redis_nodes(
    servers: ReleaseServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    with running(LocalCluster(tmp_path_factory.mktemp("rcluster") / "nodes")) as nodes:
        lines = role_lines(StreamNames(), SHARDS, servers.passwords)
        for client in nodes.clients():
            with client:
                for name, value in FSYNC_EVERY_WRITE.items():
                    client.config_set(name, value)
                for role in ROLES:
                    rules = (*lines[role][1:], *CLUSTER_EXTRA)
                    client.execute_command("ACL", "SETUSER", role, *rules)
        yield nodes


@pytest.fixture(scope="module")
def release(
    cluster: Cluster,
    servers: ReleaseServers,
    redis_nodes: LocalCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    def url(role: str) -> str:
        password = quote(servers.passwords[role], safe="")
        return f"redis://{role}:{password}@127.0.0.1:{redis_nodes.ports[0]}/0"

    values = servers.values(
        externalRedis={
            "url": url("keda"),
            "ingestUrl": url("ingest"),
            "processorUrl": url("processor"),
            "clusterAddresses": ",".join(f"127.0.0.1:{port}" for port in redis_nodes.ports),
        },
        config={"redisMode": "cluster", "voteShards": SHARDS},
        processor={"lagCount": 20, "maxReplicaCount": 4},
    )
    path = tmp_path_factory.mktemp("values-rcluster") / "values.json"
    with installed(cluster, HELM, RELEASE, NAMESPACE, values, path) as release_values:
        yield release_values


def test_keda_polls_every_shard_of_the_cluster_and_every_vote_is_recorded_once(
    cluster: Cluster, servers: ReleaseServers, redis_nodes: LocalCluster, release: dict[str, Any]
) -> None:
    since = release["keda_log_offset"]
    for name in SCALEDJOBS:
        wait_for(f"KEDA's first poll of {name}", polled(cluster, name, since))
    post_and_record_once(cluster, servers, NAMESPACE)
    for name in SCALEDJOBS:
        polls = keda_polls(cluster.keda_log(), name, since)
        assert max(p.queue_length for p in polls) >= 1, f"KEDA never saw {name}'s lag"
        assert sum(p.created for p in polls) >= 1, (name, polls)
    errors = keda_errors(cluster.keda_log(), since, NAMESPACE)
    assert errors == [], errors[:3]
    # Ingest's layout guard looks once at the one-shard stream (no layout recorded yet), which
    # the 3-shard ACL does not grant: logged and passed by design
    # (docs/redis-topologies.md#changing-vote_shards). Anything else refused is a finding.
    (old_layout,) = RedisTopology(mode="cluster").streams(StreamNames())
    denied = refused(redis_nodes.clients(), ignore=old_layout.stream)
    assert denied == [], {(e["username"], e["reason"], e["object"]) for e in denied}
    lags = []
    for names in RedisTopology(mode="cluster", shards=SHARDS).streams(StreamNames()):
        with redis_nodes.master_of(names.stream).client(decode_responses=True) as client:
            group = client.xinfo_groups(names.stream)[0]
            lags.append((group["lag"], group["pending"]))
    assert lags == [(0, 0)] * SHARDS, lags


def polled(cluster: Cluster, scaledjob: str, since: int) -> Callable[[], bool]:
    return lambda: bool(keda_polls(cluster.keda_log(), scaledjob, since))
