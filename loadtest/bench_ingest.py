"""Ingest throughput against a bare Starlette endpoint, measured in the same run.

    python -m loadtest.bench_ingest [--duration 10] [--connections 64] [--rounds 1]

Both apps run under one uvicorn worker with the same flags and take the same load (wrk when
installed, else a small asyncio HTTP client): requests/s, p50 and p99 for each, and the
ratio ingest/bare. The bare endpoint parses the same JSON body (`request.json()`) and answers
202 with a `JSONResponse`, without Redis. The ingest app writes to a stream of its own
(`bench:<random>`), deleted afterwards.
"""

from __future__ import annotations

import argparse
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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ingest.names import ENV_LOG_FORMAT, ENV_MAX_BACKLOG, ENV_REDIS_URL, ENV_VOTE_STREAM

BODY = b'{"option": "cats", "voter_id": "bench-voter"}'
UVICORN_FLAGS = ("--host", "127.0.0.1", "--workers", "1", "--loop", "uvloop", "--http",
                 "httptools", "--no-access-log", "--log-level", "warning")  # fmt: skip


async def bare_vote(request: Request) -> Response:
    payload = await request.json()
    return JSONResponse({"id": "0-0", "status_url": "/votes/0-0", "echo": len(payload)}, 202)


async def bare_health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


bare_app = Starlette(
    routes=[Route("/vote", bare_vote, methods=["POST"]), Route("/readyz", bare_health)]
)


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float  # server CPU time per request: steadier than req/s on a busy machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serve(target: list[str], env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", *target, *UVICORN_FLAGS, "--port", str(port)]
    process = subprocess.Popen(args, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base + "/readyz", process)
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


def run_wrk(url: str, duration: float, connections: int) -> tuple[float, float, float, int]:
    script = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    script += f"wrk.body = '{BODY.decode()}'\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{duration:g}s",
                "--latency",
                "-s",
                lua.name,
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        Path(lua.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, _wrk_ms(out, "50%"), _wrk_ms(out, "99%"), int(errors.group(1)) if errors else 0


def _wrk_ms(out: str, percentile: str) -> float:
    match = re.search(rf"^\s*{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        raise SystemExit(f"no {percentile} latency in wrk output:\n{out}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


async def _client(host: str, port: int, path: str, until: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    errors = 0
    while time.perf_counter() < until:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        errors += not head.startswith(b"HTTP/1.1 2")
    writer.close()
    return errors


async def _asyncio_load(
    url: str, duration: float, connections: int
) -> tuple[float, float, float, int]:
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match is not None
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    latencies: list[float] = []
    until = time.perf_counter() + duration
    errors = await asyncio.gather(
        *(_client(host, port, path, until, latencies) for _ in range(connections))
    )
    ms = sorted(latency * 1000 for latency in latencies)
    cuts = statistics.quantiles(ms, n=100)
    return len(ms) / duration, cuts[49], cuts[98], sum(errors)


def use_wrk(choice: str) -> bool:
    return choice == "wrk" or (choice == "auto" and shutil.which("wrk") is not None)


def load(url: str, args: argparse.Namespace, duration: float) -> tuple[float, float, float, int]:
    if use_wrk(args.client):
        return run_wrk(url, duration, args.connections)
    return asyncio.run(_asyncio_load(url, duration, args.connections))


def run_once(name: str, server: tuple[str, int], args: argparse.Namespace) -> Result:
    url, pid = server[0] + "/vote", server[1]
    cpu = cpu_seconds(pid)
    rate, p50, p99, errors = load(url, args, args.duration)
    cpu_us = (cpu_seconds(pid) - cpu) / max(rate * args.duration, 1) * 1e6
    return Result(name, rate, p50, p99, errors, cpu_us)


def compare(
    bare_server: tuple[str, int], ingest_server: tuple[str, int], args: argparse.Namespace
) -> tuple[Result, Result]:
    """Alternate bare and ingest runs, so that both see the same background load; the best
    run of each counts."""
    for base, _ in (bare_server, ingest_server):
        load(base + "/vote", args, min(2, args.duration))  # warm-up
    bare_runs, ingest_runs = [], []
    for round_no in range(1, args.rounds + 1):
        bare_runs.append(run_once("bare", bare_server, args))
        ingest_runs.append(run_once("ingest", ingest_server, args))
        ratio = ingest_runs[-1].requests_per_s / bare_runs[-1].requests_per_s
        print(f"round {round_no}: bare {bare_runs[-1].requests_per_s:.0f} req/s, "
              f"ingest {ingest_runs[-1].requests_per_s:.0f} req/s, ratio {ratio:.2f}")  # fmt: skip

    def best(runs: list[Result]) -> Result:
        return max(runs, key=lambda run: run.requests_per_s)

    return best(bare_runs), best(ingest_runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per app")
    parser.add_argument("--client", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument(
        "--redis-url", default=os.environ.get(ENV_REDIS_URL, "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    stream = f"bench:{uuid.uuid4().hex[:12]}"
    env = {ENV_REDIS_URL: args.redis_url, ENV_VOTE_STREAM: stream, ENV_LOG_FORMAT: "text",
           ENV_MAX_BACKLOG: str(10**12)}  # fmt: skip
    print(f"load: {'wrk' if use_wrk(args.client) else 'asyncio client'}, "
          f"{args.connections} connections, {args.rounds} x {args.duration}s per app")  # fmt: skip
    try:
        with (
            serve(["loadtest.bench_ingest:bare_app"], env) as bare_server,
            serve(["--factory", "ingest.app:create_app"], env) as ingest_server,
        ):
            bare, ingest = compare(bare_server, ingest_server, args)
        entries = redis.Redis.from_url(args.redis_url).xlen(stream)
    finally:
        redis.Redis.from_url(args.redis_url).delete(stream)
    for result in (bare, ingest):
        print(f"{result.name:>6}: {result.requests_per_s:9.0f} req/s  p50 {result.p50_ms:6.2f} ms"
              f"  p99 {result.p99_ms:6.2f} ms  server CPU {result.cpu_us:5.0f} us/req"
              f"  non-2xx {result.errors}")  # fmt: skip
    print(f"ingest/bare: {ingest.requests_per_s / bare.requests_per_s:.2f}x req/s, "
          f"{bare.cpu_us / ingest.cpu_us:.2f}x by server CPU per request "
          f"({entries} entries written to {stream}, now deleted)")  # fmt: skip
    return 1 if ingest.errors or bare.errors else 0


if __name__ == "__main__":
    sys.exit(main())
