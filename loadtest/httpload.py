"""HTTP load for the benchmarks: an app under uvicorn with the production server's settings,
driven by wrk (loadtest/wrk.py), or by a small asyncio client only when asked for explicitly
(`--client asyncio`): that client is the bottleneck long before ingest is, so a run made with
it says so."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from loadtest import wrk
from loadtest.entrypoint import running

# What `python -m ingest` gives uvicorn.Config (ingest/__main__.py, IngestSettings defaults):
# the fast loop and parser, no access log, no Server header, the same concurrency and
# keep-alive limits; one process.
UVICORN_FLAGS = ("--host", "127.0.0.1", "--loop", "uvloop", "--http", "httptools",
                 "--no-access-log", "--no-server-header", "--limit-concurrency", "4096",
                 "--timeout-keep-alive", "5", "--log-level", "warning")  # fmt: skip
CLIENTS = ("wrk", "asyncio")

LoadFigures = tuple[float, float, float, int]  # requests/s, p50 ms, p99 ms, non-2xx


@dataclass(frozen=True, slots=True)
class Drive:
    """One load run: what the client saw, and how busy the client itself was."""

    client: str
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors
    generator_cores: float


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
    with running(args, {**os.environ, **env}, port, ready_path) as server:
        yield server.url, server.pid


def drive(url: str, duration: float, connections: int, body: bytes, client: str = "wrk") -> Drive:
    """POST `body` as JSON to `url` from `connections` connections for `duration` s."""
    if client == "wrk":
        done = wrk.run(url, duration, connections, wrk.post_script(body))
        fig = done.figures
        return Drive("wrk", fig.requests, fig.seconds, fig.requests_per_s, fig.p50_ms,
                     fig.p99_ms, fig.non_2xx + fig.socket_errors, done.cores)  # fmt: skip
    if client != "asyncio":
        raise ValueError(f"client must be one of {CLIENTS}, got {client!r}")
    cpu, started = time.process_time(), time.perf_counter()
    rate, p50, p99, errors = asyncio.run(_asyncio_load(url, duration, connections, body))
    wall = time.perf_counter() - started
    cores = (time.process_time() - cpu) / wall
    return Drive("asyncio", round(rate * duration), duration, rate, p50, p99, errors, cores)


def load(
    url: str, duration: float, connections: int, body: bytes | None = None, client: str = "wrk"
) -> LoadFigures:
    """GET `url`, or POST `body` as JSON to it, from `connections` connections."""
    if client == "wrk":
        script = wrk.post_script(body) if body is not None else ""
        fig = wrk.run(url, duration, connections, script).figures
        return fig.requests_per_s, fig.p50_ms, fig.p99_ms, fig.non_2xx + fig.socket_errors
    return asyncio.run(_asyncio_load(url, duration, connections, body))


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
