"""The project's image as a local process sees it: the final stage's ENTRYPOINT, CMD and ENV,
read from the Dockerfile itself so that the agent runs exactly what the container would."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


class DockerfileError(ValueError):
    """The Dockerfile lacks what the agent needs, or says it in a form it does not read."""


@dataclass(frozen=True, slots=True)
class ImageConfig:
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def logical_lines(text: str) -> list[str]:
    """Instructions with their `\\` continuations joined and comment lines dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def exec_form(instruction: str, rest: str) -> tuple[str, ...]:
    try:
        words = json.loads(rest)
    except ValueError:
        raise DockerfileError(f"{instruction} must be in exec (JSON) form: {rest}") from None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise DockerfileError(f"{instruction} must be a JSON list of strings: {rest}")
    return tuple(words)


def env_pairs(rest: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for word in shlex.split(rest):
        name, sep, value = word.partition("=")
        if not sep:
            raise DockerfileError(f"ENV must use the NAME=value form: {rest}")
        pairs[name] = value
    return pairs


def read_image_config(dockerfile: Path) -> ImageConfig:
    """ENTRYPOINT, CMD and ENV of the last stage (each FROM starts afresh)."""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = {}
    for line in logical_lines(dockerfile.read_text()):
        instruction, _, rest = line.partition(" ")
        keyword = instruction.upper()
        if keyword == "FROM":
            entrypoint, cmd, env = (), (), {}
        elif keyword == "ENTRYPOINT":
            entrypoint = exec_form(keyword, rest.strip())
        elif keyword == "CMD":
            cmd = exec_form(keyword, rest.strip())
        elif keyword == "ENV":
            env.update(env_pairs(rest))
    if not entrypoint and not cmd:
        raise DockerfileError(f"{dockerfile} sets neither ENTRYPOINT nor CMD")
    return ImageConfig(entrypoint, cmd, env)


def container_argv(
    image: ImageConfig, command: list[str] | None, args: list[str] | None
) -> tuple[str, ...]:
    """Kubernetes' rule: `command` replaces ENTRYPOINT (and drops CMD), `args` replaces CMD."""
    if command:
        return (*command, *(args or ()))
    return (*image.entrypoint, *(args if args is not None else image.cmd))
