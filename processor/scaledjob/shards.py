"""One ScaledJob per shard, as the chart renders them: with VOTE_SHARDS=N the runner runs N
copies of the manifest, copy i named `<name>-<i>`, its trigger on shard i's stream and its Jobs
told `VOTE_SHARD=i`. The topology variables (REDIS_MODE, the sentinel ones, VOTE_SHARDS) reach
the Jobs from the runner's environment unless the manifest sets them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from processor.scaledjob.manifest import EnvVar, ScaledJobManifest
from votecontract.names import (
    ENV_REDIS_MODE,
    ENV_REDIS_SENTINEL_MASTER,
    ENV_REDIS_SENTINEL_PASSWORD,
    ENV_REDIS_SENTINEL_USERNAME,
    ENV_REDIS_SENTINELS,
    ENV_VOTE_SHARD,
    ENV_VOTE_SHARDS,
    StreamNames,
)
from votecontract.topology import RedisTopology

TOPOLOGY_ENV = (
    ENV_REDIS_MODE,
    ENV_REDIS_SENTINELS,
    ENV_REDIS_SENTINEL_MASTER,
    ENV_REDIS_SENTINEL_USERNAME,
    ENV_REDIS_SENTINEL_PASSWORD,
    ENV_VOTE_SHARDS,
)


def per_shard(
    manifest: ScaledJobManifest, topology: RedisTopology, host_env: Mapping[str, str]
) -> tuple[ScaledJobManifest, ...]:
    """The manifest of each shard (the manifest itself, its env completed, for one shard)."""
    inherited = tuple(
        EnvVar(name=name, value=host_env[name])
        for name in TOPOLOGY_ENV
        if name in host_env and all(var.name != name for var in manifest.job.env)
    )
    copies = []
    for shard in range(topology.shards):
        env = [var for var in (*manifest.job.env, *inherited) if var.name != ENV_VOTE_SHARD]
        env.append(EnvVar(name=ENV_VOTE_SHARD, value=str(shard)))
        triggers = tuple(
            dataclasses.replace(
                trigger,
                stream=topology.streams(StreamNames(trigger.stream, trigger.group))[shard].stream,
            )
            for trigger in manifest.triggers
        )
        copies.append(
            dataclasses.replace(
                manifest,
                name=manifest.name if topology.shards == 1 else f"{manifest.name}-{shard}",
                triggers=triggers,
                job=dataclasses.replace(manifest.job, env=tuple(env)),
            )
        )
    return tuple(copies)
