"""A pod's containers as local process groups, with the kubelet's restart and termination rules.

- Each container runs in a session of its own (its process group stands for the container's
  PID namespace): signals reach every process it started.
- `restartPolicy`: Always restarts any exit, OnFailure a non-zero exit, Never none; restarts
  wait the kubelet's crash-loop back-off (10 s doubling, at most 300 s).
- A failed liveness probe kills the container (then the restart policy applies); readiness
  drives `ready`; a startup probe holds the other two until it passes.
- Termination: each container's preStop exec hook (bounded by the grace period), then SIGTERM
  to the group, SIGKILL when the grace period runs out.
- Exit codes: a process killed by signal N reports 128 + N, as container runtimes do.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from processor.nodeagent.podspec import ContainerPlan, rewrite
from processor.nodeagent.probes import Prober, attempt

BACKOFF_START_S = 10.0
BACKOFF_CAP_S = 300.0
# preStop hooks may sleep for the whole grace period: they run here, never on the agent's loop.
HOOK_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="prestop")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Exit:
    code: int
    started_at: str
    finished_at: str

    @property
    def reason(self) -> str:
        return "Completed" if self.code == 0 else "Error"


@dataclass
class ContainerRun:
    spec: Mapping[str, Any]
    plan: ContainerPlan
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    restart_count: int = 0
    last_exit: Exit | None = None
    previous_exit: Exit | None = None
    restart_at: float | None = None
    probes: dict[str, Prober] = field(default_factory=dict)
    ready: bool = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, pod_ip: str) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.plan.argv,
                env=self.plan.env,
                cwd=self.log_path.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at, self.ready, self.restart_at = now_iso(), False, None
        self.probes = {}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if kind in self.spec:
                run = attempt(
                    self.spec[kind],
                    self.spec,
                    pod_ip,
                    self.plan.env,
                    lambda word: rewrite(word, self.plan.mounts),
                )
                self.probes[kind] = Prober(self.spec[kind], run, time.monotonic())

    def signal(self, signum: signal.Signals) -> None:
        if self.running and self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def reap(self) -> Exit | None:
        """The exit of a process that just ended (once), else None."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        self.process = None
        self.previous_exit, self.last_exit = (
            self.last_exit,
            Exit(code if code >= 0 else 128 - code, self.started_at, now_iso()),
        )
        self.ready = False
        return self.last_exit

    def probe(self, now: float) -> None:
        startup = self.probes.get("startupProbe")
        if startup is not None and startup.tick(now) is not True:
            return
        liveness = self.probes.get("livenessProbe")
        if liveness is not None and liveness.tick(now) is False:
            self.signal(signal.SIGKILL)
            return
        readiness = self.probes.get("readinessProbe")
        self.ready = readiness.tick(now) is True if readiness is not None else True
        if readiness is not None and readiness.verdict is False:
            readiness.verdict = None  # readiness keeps probing after a failure


def should_restart(policy: str, code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and code != 0)


def backoff_s(restarts: int) -> float:
    return float(min(BACKOFF_CAP_S, BACKOFF_START_S * 2 ** max(0, restarts - 1)))


@dataclass
class PodRuntime:
    """The containers of one pod; call `step()` regularly."""

    pod_ip: str
    restart_policy: str
    containers: list[ContainerRun]
    terminating_until: float | None = None
    finished: bool = False

    def start(self) -> None:
        for container in self.containers:
            container.start(self.pod_ip)

    def step(self, now: float) -> None:
        for container in self.containers:
            exit_ = container.reap()
            restarting = exit_ is not None and self.terminating_until is None
            if restarting and exit_ is not None and should_restart(self.restart_policy, exit_.code):
                container.restart_count += 1
                container.restart_at = now + backoff_s(container.restart_count)
            if container.restart_at is not None and now >= container.restart_at:
                container.start(self.pod_ip)
            if container.running:
                container.probe(now)
        if self.terminating_until is not None and now >= self.terminating_until:
            for container in self.containers:
                container.signal(signal.SIGKILL)
        # Finished only once every exit is reaped (recorded), not merely observed.
        waiting = any(c.process is not None or c.restart_at is not None for c in self.containers)
        self.finished = not waiting

    def terminate(self, grace_s: float, now: float) -> None:
        """preStop hooks, then SIGTERM; SIGKILL from `step` once the grace period is over."""
        if self.terminating_until is not None:
            return
        deadline = now + grace_s
        self.terminating_until = deadline
        for container in self.containers:
            container.restart_at = None
            HOOK_POOL.submit(stop_container, container, grace_s)

    def phase(self) -> str:
        if not self.finished:
            return "Running"
        codes = [c.last_exit.code if c.last_exit else 1 for c in self.containers]
        return "Succeeded" if all(code == 0 for code in codes) else "Failed"


def stop_container(container: ContainerRun, budget_s: float) -> None:
    """The container's preStop exec hook (bounded by `budget_s`), then SIGTERM."""
    hook = (container.spec.get("lifecycle") or {}).get("preStop") or {}
    if "exec" in hook and container.running and budget_s > 0:
        argv = [rewrite(word, container.plan.mounts) for word in hook["exec"]["command"]]
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                argv, env=container.plan.env, capture_output=True, timeout=budget_s, check=False
            )
    container.signal(signal.SIGTERM)
