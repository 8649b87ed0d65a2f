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
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loadtest.httpload import LoadFigures, load, serve, use_wrk
from votecontract.names import ENV_LOG_FORMAT, ENV_MAX_BACKLOG, ENV_REDIS_URL, ENV_VOTE_STREAM

BODY = b'{"option": "cats", "voter_id": "bench-voter"}'


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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(url: str, args: argparse.Namespace, duration: float) -> LoadFigures:
    return load(url, duration, args.connections, BODY, args.client)


def run_once(name: str, server: tuple[str, int], args: argparse.Namespace) -> Result:
    url, pid = server[0] + "/vote", server[1]
    cpu = cpu_seconds(pid)
    rate, p50, p99, errors = run_load(url, args, args.duration)
    cpu_us = (cpu_seconds(pid) - cpu) / max(rate * args.duration, 1) * 1e6
    return Result(name, rate, p50, p99, errors, cpu_us)


def compare(
    bare_server: tuple[str, int], ingest_server: tuple[str, int], args: argparse.Namespace
) -> tuple[Result, Result]:
    """Alternate bare and ingest runs, so that both see the same background load; the best
    run of each counts."""
    for base, _ in (bare_server, ingest_server):
        run_load(base + "/vote", args, min(2, args.duration))  # warm-up
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
            serve(["loadtest.bench_ingest:bare_app"], env, "/readyz") as bare_server,
            serve(["--factory", "ingest.app:create_app"], env, "/readyz") as ingest_server,
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
