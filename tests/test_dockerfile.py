"""Key properties of the Dockerfile, checked statically: no Docker engine runs in CI.

What a hadolint run would catch is covered where it matters: pinned base images, no build tools
or wheels in the final stage, a numeric non-root user, exec-form entry point, a tight context."""

from __future__ import annotations

import fnmatch
import json
import re

from tests.support.paths import ROOT

PINNED = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    pairs = (line.strip().split(None, 1) for line in joined.splitlines() if line.strip())
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def test_every_base_image_is_pinned_to_a_patch_version() -> None:
    images = [args.split()[0] for name, args in instructions() if name == "FROM"]
    assert len(images) >= 2, "multi-stage: a builder and a final stage"
    for image in images:
        assert PINNED.match(image), image
    assert len(set(images)) == 1, "both stages on the same base"


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    users = [args for name, args in final_stage() if name == "USER"]
    assert users, "final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    # The chart's podSecurityContext runs as this user.
    assert f"runAsUser: {uid}" in (ROOT / "helm" / "values.yaml").read_text()


def test_final_stage_has_no_build_tools_and_installs_offline() -> None:
    text = " ".join(args for _, args in final_stage())
    for tool in ("build-essential", "gcc", "apt-get install", "COPY . "):
        assert tool not in text, tool
    (install,) = [args for name, args in final_stage() if name == "RUN" and "pip install" in args]
    assert "--no-index" in install
    assert "from=builder" in install


def test_entrypoint_runs_either_service_in_exec_form() -> None:
    steps = dict(final_stage())
    assert json.loads(steps["ENTRYPOINT"]) == ["python", "-m"]
    assert json.loads(steps["CMD"]) == ["ingest"]
    assert "8000" in steps["EXPOSE"]


def test_build_context_holds_only_what_the_image_needs() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            glob = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, glob) or path.startswith(glob + "/"):
                keep = negated
        return keep

    for path in ("pyproject.toml", "README.md", "votecontract/names.py", "ingest/app.py"):
        assert included(path), path
    for path in (".git/config", ".venv/bin/python", "tests/conftest.py", "helm/values.yaml"):
        assert not included(path), path
    for name, args in instructions():
        words = [word for word in args.split() if not word.startswith("--")]
        for source in words[:-1] if name == "COPY" else ():
            assert (ROOT / source).exists(), source
            assert included(source), source
