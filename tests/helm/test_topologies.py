"""The chart per REDIS_MODE and VOTE_SHARDS (helm/ci/cluster-values.yaml,
helm/ci/sentinel-values.yaml): KEDA's trigger per mode, one ScaledJob and one sweeper per
shard, each on the stream votecontract/topology.py names, and the Jobs told their shard."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.helmchart import Manifest, pod_spec, render, values_args
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology

pytestmark = pytest.mark.helm


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def env_of(manifest: Manifest) -> dict[str, Any]:
    container = pod_spec(manifest)["containers"][0]
    return {item["name"]: item.get("value") for item in container.get("env", [])}


def test_a_sharded_cluster_gets_a_scaledjob_and_a_sweeper_per_shard() -> None:
    manifests = render("3.17.2", *values_args("cluster-values.yaml"))
    expected = RedisTopology(mode="cluster", shards=3).streams(StreamNames("votes", "processors"))
    scaledjobs = of_kind(manifests, "ScaledJob")
    assert [job["metadata"]["name"] for job in scaledjobs] == [
        f"vote-pipeline-processor-{i}" for i in range(3)
    ]
    for index, job in enumerate(scaledjobs):
        (trigger,) = job["spec"]["triggers"]
        assert trigger["type"] == "redis-cluster-streams"
        assert trigger["metadata"]["stream"] == expected[index].stream
        assert trigger["metadata"]["addresses"].count(",") == 2
        env = env_of(job)
        assert (env["REDIS_MODE"], env["VOTE_SHARDS"], env["VOTE_SHARD"]) == (
            "cluster",
            "3",
            str(index),
        )
    sweepers = of_kind(manifests, "CronJob")
    assert [env_of(sweeper)["VOTE_SHARD"] for sweeper in sweepers] == ["0", "1", "2"]
    (config,) = [m for m in of_kind(manifests, "ConfigMap") if "VOTE_STREAM" in m["data"]]
    assert (config["data"]["REDIS_MODE"], config["data"]["VOTE_SHARDS"]) == ("cluster", "3")


def test_sentinel_mode_uses_the_sentinel_trigger_and_tells_every_part() -> None:
    manifests = render("3.17.2", *values_args("sentinel-values.yaml"))
    (job,) = of_kind(manifests, "ScaledJob")
    (trigger,) = job["spec"]["triggers"]
    assert trigger["type"] == "redis-sentinel-streams"
    assert trigger["metadata"]["sentinelMaster"] == "votes-master"
    assert trigger["metadata"]["addresses"].startswith("sentinel-0.example.com:26379,")
    assert trigger["metadata"]["stream"] == "votes"
    env = env_of(job)
    assert env["REDIS_SENTINEL_MASTER"] == "votes-master"
    assert env["REDIS_SENTINELS"] == trigger["metadata"]["addresses"]
    (config,) = [m for m in of_kind(manifests, "ConfigMap") if "VOTE_STREAM" in m["data"]]
    assert config["data"]["REDIS_MODE"] == "sentinel"


def test_the_bundled_redis_acl_covers_every_shard() -> None:
    manifests = render("3.17.2", "--set", "config.voteShards=2")
    acl = next(
        m["data"]["users.acl.template"]
        for m in of_kind(manifests, "ConfigMap")
        if "users.acl.template" in m.get("data", {})
    )
    assert "~{votes:[0-9]*} ~votes:shards" in acl
    assert "%W~{votes:[0-9]*}:dead" in acl


def test_cluster_mode_with_the_bundled_standalone_redis_is_refused() -> None:
    with pytest.raises(AssertionError, match="needs an external Redis"):
        render("3.17.2", "--set", "config.redisMode=cluster")
