"""HTTP load for the benchmarks: an app under one uvicorn worker, driven by wrk when installed,
else by a small asyncio client, reporting requests/s, p50 and p99."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# One worker, the fast loop and parser, no access log: the same for every app compared.
UVICORN_FLAGS = ("--host", "127.0.0.1", "--workers", "1", "--loop", "uvloop", "--http",
                 "httptools", "--no-access-log", "--log-level", "warning")  # fmt: skip

LoadFigures = tuple[float, float, float, int]  # requests/s, p50 ms, p99 ms, non-2xx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(target: list[str], env: dict[str, str], ready_path: str) -> Iterator[tuple[str, int]]:
    """`uvicorn <target>` on a free loopback port; yields its base URL and pid once
    `ready_path` answers 200."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", *target, *UVICORN_FLAGS, "--port", str(port)]
    process = subprocess.Popen(args, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base + ready_path, process)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not become ready")


def use_wrk(client: str) -> bool:
    """`client` is auto, wrk or asyncio."""
    return client == "wrk" or (client == "auto" and shutil.which("wrk") is not None)


def load(
    url: str, duration: float, connections: int, body: bytes | None = None, client: str = "auto"
) -> LoadFigures:
    """GET `url`, or POST `body` as JSON to it, from `connections` connections."""
    if use_wrk(client):
        return _run_wrk(url, duration, connections, body)
    return asyncio.run(_asyncio_load(url, duration, connections, body))


def _run_wrk(url: str, duration: float, connections: int, body: bytes | None) -> LoadFigures:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    with tempfile.TemporaryDirectory() as scratch:
        if body is not None:
            script = Path(scratch) / "post.lua"
            script.write_text(
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = '{body.decode()}'\n"
            )
            args += ["-s", str(script)]
        out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise SystemExit(f"no Requests/sec in wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p50, p99 = _wrk_ms(out, "50%"), _wrk_ms(out, "99%")
    return float(rate[1]), p50, p99, int(errors[1]) if errors else 0


def _wrk_ms(out: str, percentile: str) -> float:
    match = re.search(rf"^\s*{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        raise SystemExit(f"no {percentile} latency in wrk output:\n{out}")
    return float(match[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]


def _request(host: str, path: str, body: bytes | None) -> bytes:
    if body is None:
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _client(
    host: str, port: int, request: bytes, until: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    while time.perf_counter() < until:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        await reader.readexactly(int(length[1]) if length else 0)
        latencies.append(time.perf_counter() - started)
        errors += not head.startswith(b"HTTP/1.1 2")
    writer.close()
    return errors


async def _asyncio_load(
    url: str, duration: float, connections: int, body: bytes | None
) -> LoadFigures:
    match = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", url)
    if match is None:
        raise SystemExit(f"bad url {url}")
    host, port, request = match[1], int(match[2]), _request(match[1], match[3], body)
    latencies: list[float] = []
    until = time.perf_counter() + duration
    errors = await asyncio.gather(
        *(_client(host, port, request, until, latencies) for _ in range(connections))
    )
    ms = sorted(latency * 1000 for latency in latencies)
    cuts = statistics.quantiles(ms, n=100)
    return len(ms) / duration, cuts[49], cuts[98], sum(errors)
