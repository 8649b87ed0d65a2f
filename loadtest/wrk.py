"""wrk, the load generator every HTTP benchmark uses: required (never silently replaced), run
as a child so that its own CPU time is known (wait4), and its output parsed.

A Python client at the rates ingest reaches takes most of a core and becomes what is measured
(issue 17: an asyncio client at ~6k req/s pushed the ingest ratio towards 1); wrk needs a
fraction of that. `scripts/install-packages.sh wrk` installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "install it with `bash scripts/install-packages.sh wrk` (Debian package wrk)"
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed something this module does not understand."""


@dataclass(frozen=True, slots=True)
class WrkFigures:
    """What wrk printed for one run."""

    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


@dataclass(frozen=True, slots=True)
class WrkRun:
    figures: WrkFigures
    wall_s: float
    cpu_s: float  # wrk's own user + system time

    @property
    def cores(self) -> float:
        """wrk's CPU use in cores (1.0: one core busy all the time)."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(f"wrk is not installed: {INSTALL_HINT}")
    return path


def lua_string(text: str) -> str:
    """`text` as a Lua string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def post_script(body: bytes, delay_ms: float | None = None) -> str:
    """A wrk script POSTing `body` as JSON; with `delay_ms`, each connection waits that long
    before each request (wrk's `delay()` hook), which paces the rate."""
    script = (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {lua_string(body.decode())}\n"
    )
    if delay_ms is not None:
        script += f"function delay()\n  return {delay_ms:.3f}\nend\n"
    return script


def parse(out: str) -> WrkFigures:
    """The figures of wrk's `--latency` output."""
    requests = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if requests is None or rate is None:
        raise WrkError(f"unexpected wrk output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkFigures(
        requests=int(requests[1]),
        seconds=float(requests[2]) * _UNIT_MS[requests[3]] / 1000,
        requests_per_s=float(rate[1]),
        p50_ms=_latency_ms(out, "50%"),
        p99_ms=_latency_ms(out, "99%"),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def _latency_ms(out: str, percentile: str) -> float:
    match = re.search(rf"^\s*{re.escape(percentile)}\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if match is None:
        raise WrkError(f"no {percentile} latency in wrk output:\n{out}")
    return float(match[1]) * _UNIT_MS[match[2]]


def run(url: str, duration_s: float, connections: int, script: str) -> WrkRun:
    """One wrk thread (one core at most: its CPU use shows when it is the bottleneck)."""
    wrk = require_wrk()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "load.lua"
        path.write_text(script, encoding="utf-8")
        args = [wrk, "-t1", f"-c{connections}", f"-d{duration_s:g}s", "--latency", "-s", str(path)]
        started = time.perf_counter()
        process = subprocess.Popen([*args, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None
        assert process.stderr is not None
        out, err = process.stdout.read(), process.stderr.read()  # a few hundred bytes each
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise WrkError(f"wrk failed ({process.returncode}): {err.decode()}{out.decode()}")
    return WrkRun(parse(out.decode()), wall, usage.ru_utime + usage.ru_stime)
