"""helm/ uses exactly the env-var, stream and group names that votecontract/names.py defines."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.helmchart import (
    CHART,
    DEFAULT,
    SCENARIOS,
    Manifest,
    find,
    pod_spec,
    render,
    values_args,
)
from votecontract import names
from votecontract.topology import RedisTopology

pytestmark = pytest.mark.helm

ENV_NAMES = {value for key, value in vars(names).items() if key.startswith("ENV_")}
# The pipeline's own containers; Redis and PostgreSQL images have variables of their own.
PIPELINE_CONTAINERS = {"ingest", "processor", "migrate", "check"}


@pytest.fixture(scope="module")
def renders() -> dict[str, list[Manifest]]:
    return {scenario: render("3.17.2", *values_args(scenario)) for scenario in SCENARIOS}


def pipeline_containers(manifests: list[Manifest]) -> list[dict[str, Any]]:
    workloads = ("Deployment", "Job", "ScaledJob", "Pod")
    return [
        container
        for manifest in manifests
        if manifest["kind"] in workloads
        for container in pod_spec(manifest)["containers"]
        if container["name"] in PIPELINE_CONTAINERS
    ]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_env_vars_are_those_of_names_py(renders: dict[str, list[Manifest]], scenario: str) -> None:
    containers = pipeline_containers(renders[scenario])
    assert {container["name"] for container in containers} == PIPELINE_CONTAINERS
    for container in containers:
        for item in container.get("env", []):
            assert item["name"] in ENV_NAMES, (container["name"], item["name"])
            secret_ref = item.get("valueFrom", {}).get("secretKeyRef")
            if secret_ref:
                assert secret_ref["key"] == item["name"]
    config = find(renders[scenario], "ConfigMap", "vote-pipeline")["data"]
    assert set(config) <= ENV_NAMES


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_stream_and_group_agree_everywhere(
    renders: dict[str, list[Manifest]], scenario: str
) -> None:
    manifests = renders[scenario]
    config = find(manifests, "ConfigMap", "vote-pipeline")["data"]
    stream, group = config[names.ENV_VOTE_STREAM], config[names.ENV_VOTE_GROUP]
    # Each shard's trigger is on the stream votecontract names for its VOTE_SHARD.
    shards = RedisTopology.from_env(config).streams(names.StreamNames(stream, group))
    scaledjobs = [doc for doc in manifests if doc["kind"] == "ScaledJob"]
    assert len(scaledjobs) == len(shards)
    for scaledjob in scaledjobs:
        trigger = scaledjob["spec"]["triggers"][0]["metadata"]
        container = pod_spec(scaledjob)["containers"][0]
        env = {item["name"]: item.get("value") for item in container["env"]}
        shard = int(env.get(names.ENV_VOTE_SHARD) or 0)
        assert (trigger["stream"], trigger["consumerGroup"]) == (shards[shard].stream, group)
        assert (env[names.ENV_VOTE_STREAM], env[names.ENV_VOTE_GROUP]) == (stream, group)


def test_defaults_are_those_of_names_py(renders: dict[str, list[Manifest]]) -> None:
    config = find(renders[DEFAULT], "ConfigMap", "vote-pipeline")["data"]
    assert config[names.ENV_VOTE_STREAM] == names.DEFAULT_VOTE_STREAM
    assert config[names.ENV_VOTE_GROUP] == names.DEFAULT_VOTE_GROUP
    assert tuple(config[names.ENV_VOTE_OPTIONS].split(",")) == names.DEFAULT_VOTE_OPTIONS


def test_values_comments_name_real_variables() -> None:
    referenced = set(re.findall(r"\[([A-Z][A-Z0-9_]*)\]", (CHART / "values.yaml").read_text()))
    assert referenced
    assert referenced <= ENV_NAMES
