"""The local cluster and sentinel fixtures are what the topology tests assume."""

from __future__ import annotations

import pytest
import redis

from tests.support.rediscluster import LocalCluster
from tests.support.redissentinel import MASTER_NAME, LocalSentinel


@pytest.mark.redis_cluster
def test_cluster_has_three_masters_each_with_a_replica(redis_cluster: LocalCluster) -> None:
    with redis.Redis(port=redis_cluster.ports[0], decode_responses=True) as client:
        nodes = client.cluster("nodes")
    roles = sorted("master" if "master" in node["flags"] else "replica" for node in nodes.values())
    assert roles == ["master"] * 3 + ["replica"] * 3
    masters = {redis_cluster.master_of(f"{{k{i}}}").port for i in range(50)}
    assert len(masters) == 3


@pytest.mark.redis_sentinel
def test_sentinels_agree_on_the_master_and_see_the_replica(redis_sentinel: LocalSentinel) -> None:
    port = redis_sentinel.master_port()
    for sentinel in redis_sentinel.sentinels:
        with sentinel.client() as client:
            state = client.sentinel_master(MASTER_NAME)
        assert int(state["port"]) == port
        assert (state["num-other-sentinels"], state["num-slaves"]) == (2, 1)
