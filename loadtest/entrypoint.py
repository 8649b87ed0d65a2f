"""The production entrypoint, as the container runs it: `python -m ingest` with the image's
environment (the final stage's ENV lines of the Dockerfile), on a loopback port.

HOST is the one variable changed: the image listens on 0.0.0.0 inside its own network
namespace; here it would listen on every interface of the machine, and load tests target
loopback only.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from votecontract.names import ENV_HOST, ENV_PORT

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
READY_TIMEOUT_S = 20.0


def image_env(dockerfile_text: str) -> dict[str, str]:
    """The variables the final stage's ENV instructions set (`ENV A=1 B=2`, continued lines,
    comment lines inside them and the legacy `ENV A 1` form)."""
    lines = [ln for ln in dockerfile_text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    env: dict[str, str] = {}
    for line in joined.splitlines():
        words = line.strip().split(None, 1)
        if not words:
            continue
        if words[0].upper() == "FROM":
            env = {}  # only the final stage counts
        elif words[0].upper() == "ENV" and len(words) == 2:
            tokens = shlex.split(words[1])
            if tokens and "=" not in tokens[0]:
                env[tokens[0]] = " ".join(tokens[1:])
            else:
                env.update(token.split("=", 1) for token in tokens)  # type: ignore[misc]
    return env


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    pid: int


def args_text(process: subprocess.Popen[bytes]) -> str:
    args = process.args
    return " ".join(map(str, args)) if isinstance(args, list) else str(args)


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{args_text(process)} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {READY_TIMEOUT_S:g} s")


@contextmanager
def running(args: list[str], env: dict[str, str], port: int, ready_path: str) -> Iterator[Server]:
    """A server process on 127.0.0.1:`port`, until the block ends (SIGTERM, then wait); its
    output goes to a temporary file, shown when it does not get ready."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    process = subprocess.Popen(args, env=env, cwd=REPO_ROOT, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url + ready_path, process)
        except RuntimeError as exc:
            log.seek(0)
            raise RuntimeError(f"{exc}; its output:\n{log.read()[-3000:].decode()}") from None
        yield Server(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def production_ingest(port: int, env: dict[str, str]) -> AbstractContextManager[Server]:
    """`python -m ingest` with the image's environment, then `env`, on 127.0.0.1:`port`."""
    image = image_env(DOCKERFILE.read_text(encoding="utf-8"))
    full = {**os.environ, **image, **env, ENV_HOST: "127.0.0.1", ENV_PORT: str(port)}
    return running([sys.executable, "-m", "ingest"], full, port, "/readyz")
