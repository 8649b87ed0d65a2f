from __future__ import annotations

from typing import Any

from loadtest.local_pipeline import PipelineConfig, rename_stream
from votecontract.names import ENV_VOTE_GROUP, ENV_VOTE_STREAM, StreamNames


def manifest() -> dict[str, Any]:
    env = [
        {"name": ENV_VOTE_STREAM, "value": "votes"},
        {"name": ENV_VOTE_GROUP, "value": "processors"},
        {"name": "BATCH_SIZE", "value": "500"},
    ]
    return {
        "spec": {
            "triggers": [{"metadata": {"stream": "votes", "consumerGroup": "processors"}}],
            "jobTargetRef": {"template": {"spec": {"containers": [{"env": env}]}}},
        }
    }


def test_the_jobs_and_the_trigger_are_pointed_at_the_runs_stream() -> None:
    renamed = rename_stream(manifest(), StreamNames(stream="lt:votes", group="g"))
    spec = renamed["spec"]
    assert spec["triggers"][0]["metadata"] == {"stream": "lt:votes", "consumerGroup": "g"}
    env = spec["jobTargetRef"]["template"]["spec"]["containers"][0]["env"]
    assert [var["value"] for var in env] == ["lt:votes", "g", "500"]


def test_every_part_gets_the_same_settings() -> None:
    config = PipelineConfig("redis://r/1", "postgresql://p/db", StreamNames("s", "g"), 7)
    assert config.environ() == {
        "REDIS_URL": "redis://r/1", "DATABASE_URL": "postgresql://p/db",
        "VOTE_STREAM": "s", "VOTE_GROUP": "g", "MAX_BACKLOG": "7",
    }  # fmt: skip
