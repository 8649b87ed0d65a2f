"""exec, httpGet and tcpSocket probes with the kubelet's thresholds: a probe's result counts
only after `initialDelaySeconds`; `successThreshold` successes in a row make it pass,
`failureThreshold` failures in a row make it fail; each attempt is bounded by
`timeoutSeconds`. Attempts run on a thread pool so one slow probe never stalls the agent."""

from __future__ import annotations

import http.client
import socket
import subprocess
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

PROBE_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")


def port_number(port: int | str, container: Mapping[str, Any]) -> int:
    if isinstance(port, int) or port.isdigit():
        return int(port)
    for declared in container.get("ports") or ():
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"no container port named {port!r}")


def http_get(host: str, port: int, path: str, timeout_s: float) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", path or "/")
        return 200 <= connection.getresponse().status < 400
    except OSError:
        return False
    finally:
        connection.close()


def tcp_open(host: str, port: int, timeout_s: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def exec_ok(argv: list[str], env: Mapping[str, str], timeout_s: float) -> bool:
    try:
        done = subprocess.run(
            argv, env=dict(env), capture_output=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def attempt(
    spec: Mapping[str, Any],
    container: Mapping[str, Any],
    pod_ip: str,
    env: Mapping[str, str],
    rewrite: Callable[[str], str],
) -> Callable[[], bool]:
    """One probe attempt, ready to run on the pool."""
    timeout_s = float(spec.get("timeoutSeconds", 1))
    if "exec" in spec:
        argv = [rewrite(word) for word in spec["exec"]["command"]]
        return lambda: exec_ok(argv, env, timeout_s)
    if "httpGet" in spec:
        get = spec["httpGet"]
        port = port_number(get["port"], container)
        host = get.get("host") or pod_ip
        return lambda: http_get(host, port, get.get("path", "/"), timeout_s)
    if "tcpSocket" in spec:
        port = port_number(spec["tcpSocket"]["port"], container)
        return lambda: tcp_open(pod_ip, port, timeout_s)
    raise ValueError(f"probe kind {', '.join(spec)} is not supported")


@dataclass
class Prober:
    """One probe of one container; `tick(now)` returns its verdict: True, False or None
    (not decided yet)."""

    spec: Mapping[str, Any]
    run: Callable[[], bool]
    started_at: float
    verdict: bool | None = None
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    pending: Future[bool] | None = field(default=None, repr=False)

    def tick(self, now: float) -> bool | None:
        if self.pending is not None and self.pending.done():
            self._count(self.pending.result())
            self.pending = None
        delay = float(self.spec.get("initialDelaySeconds", 0))
        if self.pending is None and now >= max(self.next_at, self.started_at + delay):
            self.pending = PROBE_POOL.submit(self.run)
            self.next_at = now + float(self.spec.get("periodSeconds", 10))
        return self.verdict

    def _count(self, ok: bool) -> None:
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.spec.get("successThreshold", 1)):
                self.verdict = True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.failures >= int(self.spec.get("failureThreshold", 3)):
                self.verdict = False
