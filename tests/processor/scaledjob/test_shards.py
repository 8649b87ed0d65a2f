"""One ScaledJob per shard in the local runner, as the chart renders them, and the three KEDA
Redis stream trigger types."""

from __future__ import annotations

import pytest

from processor.scaledjob.manifest import parse_manifest
from processor.scaledjob.shards import per_shard
from tests.support.keda_manifest import scaledjob_document
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology

NAMES = StreamNames("votes", "processors")


def env_of(manifest: object) -> dict[str, str | None]:
    return {var.name: var.value for var in manifest.job.env}  # type: ignore[attr-defined]


def test_one_standalone_shard_is_the_manifest_as_written() -> None:
    manifest = parse_manifest(scaledjob_document(NAMES))
    (only,) = per_shard(manifest, RedisTopology(), {})
    assert only.name == manifest.name
    assert only.triggers == manifest.triggers
    assert env_of(only)["VOTE_SHARD"] == "0"


def test_each_shard_gets_its_trigger_stream_its_index_and_the_topology() -> None:
    manifest = parse_manifest(scaledjob_document(NAMES))
    host = {"REDIS_MODE": "cluster", "VOTE_SHARDS": "3", "UNRELATED": "x"}
    copies = per_shard(manifest, RedisTopology(mode="cluster", shards=3), host)
    assert [copy.name for copy in copies] == [f"{manifest.name}-{i}" for i in range(3)]
    assert [copy.triggers[0].stream for copy in copies] == ["{votes:0}", "{votes:1}", "{votes:2}"]
    for index, copy in enumerate(copies):
        env = env_of(copy)
        assert env["VOTE_SHARD"] == str(index)
        assert (env["REDIS_MODE"], env["VOTE_SHARDS"]) == ("cluster", "3")
        assert "UNRELATED" not in env
        assert env["VOTE_STREAM"] == "votes"  # the base: the Job derives its shard's name


def test_one_cluster_stream_is_the_hash_tagged_name() -> None:
    manifest = parse_manifest(scaledjob_document(NAMES))
    (only,) = per_shard(manifest, RedisTopology(mode="cluster"), {"REDIS_MODE": "cluster"})
    assert only.triggers[0].stream == "{votes}"


@pytest.mark.parametrize(
    "trigger_type", ["redis-streams", "redis-cluster-streams", "redis-sentinel-streams"]
)
def test_every_redis_stream_trigger_type_runs_locally(trigger_type: str) -> None:
    document = scaledjob_document(NAMES)
    document["spec"]["triggers"][0]["type"] = trigger_type
    assert parse_manifest(document).triggers[0].stream == "votes"
