"""The chart per REDIS_MODE and VOTE_SHARDS (helm/ci/cluster-values.yaml,
helm/ci/sentinel-values.yaml): KEDA's trigger per mode, one ScaledJob and one sweeper per
shard, each on the stream votecontract/topology.py names, and the Jobs told their shard."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.helmchart import (
    CHART,
    Manifest,
    find,
    pod_spec,
    render,
    render_values,
    values_args,
)
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


def sentinel_values(**external: object) -> dict[str, Any]:
    """helm/ci/sentinel-values.yaml with `external` merged into externalRedis."""
    values: dict[str, Any] = yaml.safe_load((CHART / "ci" / "sentinel-values.yaml").read_text())
    values["externalRedis"] |= external
    return values


def secret_refs(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """The first container's env entries read from a Secret, by name."""
    container = pod_spec(manifest)["containers"][0]
    return {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }


def auth_params(manifests: list[Manifest]) -> dict[str, tuple[str, str]]:
    (auth,) = of_kind(manifests, "TriggerAuthentication")
    return {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]}


def test_sentinel_credentials_reach_keda_and_every_pod() -> None:
    manifests = render("3.17.2", *values_args("sentinel-values.yaml"))
    secrets = {m["metadata"]["name"]: m["stringData"] for m in of_kind(manifests, "Secret")}
    params = auth_params(manifests)
    for parameter, key in (("sentinelUsername", "REDIS_SENTINEL_USERNAME"),
                           ("sentinelPassword", "REDIS_SENTINEL_PASSWORD")):  # fmt: skip
        assert params[parameter] == ("vote-pipeline", key)
    assert secrets["vote-pipeline"]["REDIS_SENTINEL_USERNAME"] == "votes-sentinel"
    assert secrets["vote-pipeline"]["REDIS_SENTINEL_PASSWORD"] == "s3cret-s"
    workloads = [find(manifests, "Deployment", "vote-pipeline-ingest")]
    workloads += of_kind(manifests, "ScaledJob") + of_kind(manifests, "CronJob")
    for workload in workloads:
        refs = secret_refs(workload)
        for variable, value in (("REDIS_SENTINEL_USERNAME", "votes-sentinel"),
                                ("REDIS_SENTINEL_PASSWORD", "s3cret-s")):  # fmt: skip
            ref = refs[variable]
            assert secrets[ref["name"]][ref["key"]] == value, workload["metadata"]["name"]
            assert ref["name"] != "vote-pipeline", "a pod reads only its component's Secret"


def test_sentinel_credentials_come_from_an_existing_secret_when_present() -> None:
    values = sentinel_values(url="", sentinelUsername="", sentinelPassword="")
    values["existingSecret"] = "my-creds"
    values["externalRedis"]["address"] = "unused:6379"
    manifests = render_values("3.17.2", values)
    assert auth_params(manifests)["sentinelPassword"] == ("my-creds", "REDIS_SENTINEL_PASSWORD")
    assert auth_params(manifests)["sentinelUsername"] == ("my-creds", "REDIS_SENTINEL_USERNAME")
    for workload in [find(manifests, "Deployment", "vote-pipeline-ingest"),
                     *of_kind(manifests, "ScaledJob")]:  # fmt: skip
        ref = secret_refs(workload)["REDIS_SENTINEL_PASSWORD"]
        assert ref == {"name": "my-creds", "key": "REDIS_SENTINEL_PASSWORD", "optional": True}


def test_sentinels_without_a_password_get_no_sentinel_credentials() -> None:
    manifests = render_values("3.17.2", sentinel_values(sentinelUsername="", sentinelPassword=""))
    assert not {"sentinelUsername", "sentinelPassword"} & set(auth_params(manifests))
    assert "REDIS_SENTINEL_PASSWORD" not in secret_refs(of_kind(manifests, "ScaledJob")[0])


def test_tls_behind_sentinel_reaches_keda_for_sentinels_and_master() -> None:
    """KEDA's sentinel client has one TLS config (go-redis FailoverOptions.TLSConfig) for the
    sentinels and the master: the trigger's enableTLS and the TriggerAuthentication's CA."""
    values = sentinel_values(url="rediss://keda:s3cret@unused:6379/0")
    values["tls"] = {"secretName": "vote-tls"}
    manifests = render_values("3.17.2", values)
    (job,) = of_kind(manifests, "ScaledJob")
    (trigger,) = job["spec"]["triggers"]
    assert trigger["metadata"]["enableTLS"] == "true"
    assert auth_params(manifests)["ca"] == ("vote-tls", "ca.crt")
