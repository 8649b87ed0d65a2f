"""Variants of keda/scaledjob.yaml for tests: private stream names, small limits, fast probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import SCALEDJOB
from votecontract.names import ENV_VOTE_GROUP, ENV_VOTE_STREAM, StreamNames


def scaledjob_document(names: StreamNames, **spec: Any) -> dict[str, Any]:
    """The project's ScaledJob on `names`; `spec` keys override spec / jobTargetRef / pod."""
    document: dict[str, Any] = yaml.safe_load(SCALEDJOB.read_text())
    trigger = document["spec"]["triggers"][0]["metadata"]
    trigger["stream"], trigger["consumerGroup"] = names.stream, names.group
    job = document["spec"]["jobTargetRef"]
    pod = job["template"]["spec"]
    for item in pod["containers"][0]["env"]:
        if item["name"] == ENV_VOTE_STREAM:
            item["value"] = names.stream
        if item["name"] == ENV_VOTE_GROUP:
            item["value"] = names.group
    for key, value in spec.items():
        if key == "lagCount":
            trigger["lagCount"] = str(value)
        elif key in ("backoffLimit", "activeDeadlineSeconds"):
            job[key] = value
        elif key == "terminationGracePeriodSeconds":
            pod[key] = value
        else:
            document["spec"][key] = value
    return document


def write_scaledjob(path: Path, names: StreamNames, **spec: Any) -> Path:
    path.write_text(yaml.safe_dump(scaledjob_document(names, **spec)))
    return path


def env_items(document: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = document["spec"]["jobTargetRef"]["template"]["spec"]["containers"][
        0
    ]["env"]
    return env
