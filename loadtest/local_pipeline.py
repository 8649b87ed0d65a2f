"""The local pipeline a load test runs against: migrations, ingest on a port of its own and
the local KEDA runner (`python -m processor.scaledjob`), all as child processes with the
stream, group and database given, so a test run never touches a developer's instance."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from votecontract.names import (
    ENV_DATABASE_URL,
    ENV_HOST,
    ENV_MAX_BACKLOG,
    ENV_PORT,
    ENV_REDIS_URL,
    ENV_VOTE_GROUP,
    ENV_VOTE_STREAM,
    StreamNames,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = REPO_ROOT / "keda" / "scaledjob.yaml"
STOP_GRACE_S = 40.0


class PipelineError(RuntimeError):
    """A part of the local pipeline did not start."""


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    redis_url: str
    database_url: str
    names: StreamNames
    max_backlog: int | None = None
    polling_interval_s: float | None = None
    # The sweeper CronJob's local twin (loadtest/sweeper.py): seconds between sweeps, or None.
    sweep_interval_s: float | None = None
    manifest: Path = DEFAULT_MANIFEST
    # REDIS_MODE, its sentinel variables, VOTE_SHARDS: for every part alike.
    topology_env: tuple[tuple[str, str], ...] = ()
    # Set before the rest, e.g. the container image's ENV (loadtest/entrypoint.py).
    base_env: tuple[tuple[str, str], ...] = ()

    def environ(self) -> dict[str, str]:
        """The variables every part (and reconciliation) reads its settings from."""
        env = {
            **dict(self.base_env),
            ENV_REDIS_URL: self.redis_url,
            ENV_DATABASE_URL: self.database_url,
            ENV_VOTE_STREAM: self.names.stream,
            ENV_VOTE_GROUP: self.names.group,
        }
        if self.max_backlog is not None:
            env[ENV_MAX_BACKLOG] = str(self.max_backlog)
        return env | dict(self.topology_env)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (loopback)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def rename_stream(manifest: dict[str, Any], names: StreamNames) -> dict[str, Any]:
    """The ScaledJob with its trigger and the Job's env pointed at `names`."""
    spec = manifest["spec"]
    for trigger in spec["triggers"]:
        trigger["metadata"]["stream"] = names.stream
        trigger["metadata"]["consumerGroup"] = names.group
    for container in spec["jobTargetRef"]["template"]["spec"]["containers"]:
        for var in container.get("env", []):
            if var["name"] == ENV_VOTE_STREAM:
                var["value"] = names.stream
            elif var["name"] == ENV_VOTE_GROUP:
                var["value"] = names.group
    return manifest


@dataclass
class LocalPipeline:
    """Start with `start()`, stop with `stop()` (SIGTERM, as Ctrl-C would: Jobs finish)."""

    config: PipelineConfig
    workdir: Path
    log_to: Path | None = None
    ingest_url: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.config.environ(), **extra}

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        migrate = [sys.executable, "-m", "processor", "migrate"]
        subprocess.run(migrate, env=self.env(), check=True, cwd=REPO_ROOT)
        self.start_ingest()
        self.start_runner()
        if self.config.sweep_interval_s is not None:
            args = [sys.executable, "-m", "loadtest.sweeper", str(self.config.sweep_interval_s)]
            self.spawn("sweeper", args, self.env())

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.log_to or os.devnull, "ab")  # noqa: SIM115 (owned by the child)
        print(f"starting {name}: {' '.join(args[1:])}", flush=True)
        self.processes.append(
            subprocess.Popen(args, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        )

    def start_ingest(self) -> None:
        port = free_port()
        env = self.env(**{ENV_HOST: "127.0.0.1", ENV_PORT: str(port)})
        self.spawn("ingest", [sys.executable, "-m", "ingest"], env)
        self.ingest_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while not http_ok(f"{self.ingest_url}/readyz"):
            if time.monotonic() > deadline or self.processes[-1].poll() is not None:
                raise PipelineError(f"ingest did not get ready on {self.ingest_url}")
            time.sleep(0.1)

    def start_runner(self) -> None:
        manifest = yaml.safe_load(self.config.manifest.read_text(encoding="utf-8"))
        path = self.workdir / "scaledjob.yaml"
        path.write_text(yaml.safe_dump(rename_stream(manifest, self.config.names)))
        args = [sys.executable, "-m", "processor.scaledjob", str(path)]
        args += ["--workdir", str(self.workdir / "jobs")]
        if self.config.polling_interval_s is not None:
            args += ["--polling-interval", str(self.config.polling_interval_s)]
        self.spawn("local KEDA runner", args, self.env())

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
