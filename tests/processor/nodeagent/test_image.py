"""The project's image as the node agent reads it from the Dockerfile, and Kubernetes' rule
for command and args over ENTRYPOINT and CMD."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.nodeagent.image import (
    DockerfileError,
    ImageConfig,
    container_argv,
    read_image_config,
)
from tests.support.paths import ROOT


def test_the_projects_dockerfile_gives_its_final_stage() -> None:
    image = read_image_config(ROOT / "Dockerfile")
    assert image.entrypoint == ("python", "-m")
    assert image.cmd == ("ingest",)
    assert image.env["HOST"] == "0.0.0.0"
    assert image.env["PORT"] == "8000"
    assert image.env["PYTHONUNBUFFERED"] == "1"


def test_each_from_starts_afresh(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        'FROM a AS builder\nENV X=1\nENTRYPOINT ["build"]\n'
        'FROM b\n# a comment\nENV Y=2 \\\n    Z=3\nCMD ["run", "--fast"]\n'
    )
    assert read_image_config(dockerfile) == ImageConfig((), ("run", "--fast"), {"Y": "2", "Z": "3"})


@pytest.mark.parametrize(
    "text", ["FROM a\nCMD run fast\n", 'FROM a\nENV X\nCMD ["x"]\n', "FROM a\nENV X=1\n"]
)
def test_forms_the_agent_does_not_read_are_refused(tmp_path: Path, text: str) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(text)
    with pytest.raises(DockerfileError):
        read_image_config(dockerfile)


IMAGE = ImageConfig(("python", "-m"), ("ingest",), {})


@pytest.mark.parametrize(
    ("command", "args", "argv"),
    [
        (None, None, ("python", "-m", "ingest")),
        (None, ["processor", "migrate"], ("python", "-m", "processor", "migrate")),
        (["python", "-m", "processor"], None, ("python", "-m", "processor")),
        (["sh", "-c"], ["echo hi"], ("sh", "-c", "echo hi")),
    ],
)
def test_command_replaces_the_entrypoint_and_args_the_cmd(
    command: list[str] | None, args: list[str] | None, argv: tuple[str, ...]
) -> None:
    assert container_argv(IMAGE, command, args) == argv
