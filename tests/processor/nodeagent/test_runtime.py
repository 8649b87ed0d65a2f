"""Containers as local process groups: exit codes, restart policies, termination with preStop
and grace, probes' thresholds. Real processes; the agent's clock is passed in, so no test
depends on how fast the machine is."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from processor.nodeagent.podspec import ContainerPlan
from processor.nodeagent.probes import Prober
from processor.nodeagent.runtime import ContainerRun, PodRuntime, backoff_s

WAIT_S = 30.0  # generous: only a broken runtime gets near it


def container(tmp_path: Path, code: str, spec: dict[str, Any] | None = None) -> ContainerRun:
    env = {"PATH": os.environ["PATH"], "MARK": str(tmp_path / "prestop-ran")}
    plan = ContainerPlan("c", (sys.executable, "-c", code), env, {})
    return ContainerRun({"name": "c", **(spec or {})}, plan, tmp_path / "c.log")


def until(runtime: PodRuntime, now: float, done: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, "the runtime never got there"
        runtime.step(now)
        time.sleep(0.01)


def test_exit_codes_and_phase_under_restart_policy_never(tmp_path: Path) -> None:
    runtime = PodRuntime("127.0.1.1", "Never", [container(tmp_path, "raise SystemExit(3)")])
    runtime.start()
    until(runtime, 0.0, lambda: runtime.finished)
    assert runtime.phase() == "Failed"
    last = runtime.containers[0].last_exit
    assert last is not None
    assert last.code == 3
    assert last.reason == "Error"


def test_a_signal_death_reports_128_plus_the_signal(tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    runtime = PodRuntime("127.0.1.1", "Never", [container(tmp_path, code)])
    runtime.start()
    until(runtime, 0.0, lambda: runtime.finished)
    last = runtime.containers[0].last_exit
    assert last is not None
    assert last.code == 137


def test_on_failure_restarts_after_the_back_off_and_counts_it(tmp_path: Path) -> None:
    flag = tmp_path / "second"
    code = (
        f"import pathlib, sys; p = pathlib.Path({str(flag)!r}); ok = p.exists(); p.touch()\n"
        "sys.exit(0 if ok else 1)"
    )
    runtime = PodRuntime("127.0.1.1", "OnFailure", [container(tmp_path, code)])
    runtime.start()
    run = runtime.containers[0]
    until(runtime, 100.0, lambda: run.restart_at is not None)
    assert run.restart_at == 100.0 + backoff_s(1)
    assert run.restart_count == 1
    runtime.step(100.0 + backoff_s(1) - 0.5)
    assert not run.running, "restarted before its back-off"
    until(runtime, 100.0 + backoff_s(1), lambda: runtime.finished)
    assert runtime.phase() == "Succeeded"
    assert run.restart_count == 1


def test_termination_runs_pre_stop_then_sigterm(tmp_path: Path) -> None:
    code = (
        "import os, pathlib, signal, sys, time\n"
        "def on_term(*_): sys.exit(0 if pathlib.Path(os.environ['MARK']).exists() else 9)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "print('up', flush=True)\n"
        "while True: time.sleep(1)\n"
    )
    hook = {
        "lifecycle": {"preStop": {"exec": {"command": ["touch", str(tmp_path / "prestop-ran")]}}}
    }
    runtime = PodRuntime("127.0.1.1", "Always", [container(tmp_path, code, hook)])
    runtime.start()
    log = tmp_path / "c.log"
    until(runtime, 0.0, lambda: log.exists() and "up" in log.read_text())
    runtime.terminate(30.0, 0.0)
    until(runtime, 1.0, lambda: runtime.finished)
    last = runtime.containers[0].last_exit
    assert last is not None
    assert last.code == 0, "SIGTERM came before the preStop hook ran"
    assert runtime.containers[0].restart_count == 0, "a terminating pod restarts nothing"


def test_sigkill_when_the_grace_period_runs_out(tmp_path: Path) -> None:
    code = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\nwhile True: time.sleep(1)\n"
    )
    runtime = PodRuntime("127.0.1.1", "Never", [container(tmp_path, code)])
    runtime.start()
    log = tmp_path / "c.log"
    until(runtime, 0.0, lambda: log.exists() and "up" in log.read_text())
    runtime.terminate(5.0, 0.0)
    runtime.step(4.9)
    assert runtime.containers[0].running, "killed before its grace period ended"
    until(runtime, 5.0, lambda: runtime.finished)
    last = runtime.containers[0].last_exit
    assert last is not None
    assert last.code == 137


@pytest.mark.parametrize(
    ("results", "spec", "verdicts"),
    [
        ([True], {"periodSeconds": 1}, [True]),
        ([False, False, False], {"periodSeconds": 1}, [None, None, False]),
        (
            [False, True, False, False],
            {"periodSeconds": 1, "failureThreshold": 2},
            [None, True, True, False],
        ),
        ([True, True], {"periodSeconds": 1, "successThreshold": 2}, [None, True]),
    ],
)
def test_probe_thresholds(
    results: list[bool], spec: dict[str, Any], verdicts: list[bool | None]
) -> None:
    answers = iter(results)
    prober = Prober(spec, lambda: next(answers), started_at=0.0)
    seen = []
    for step, _ in enumerate(results):
        prober.tick(float(step))  # submits an attempt
        assert prober.pending is not None
        prober.pending.result(timeout=WAIT_S)
        seen.append(prober.tick(float(step) + 0.5))  # counts it
    assert seen == verdicts


def test_no_attempt_before_the_initial_delay() -> None:
    prober = Prober({"initialDelaySeconds": 5}, lambda: True, started_at=0.0)
    assert prober.tick(4.9) is None
    assert prober.pending is None
    prober.tick(5.0)
    assert prober.pending is not None
