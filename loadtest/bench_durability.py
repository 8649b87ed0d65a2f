"""What each ACK_DURABILITY level costs against `memory`, measured in one run.

    python -m loadtest.bench_durability [--duration 10] [--connections 64] [--rounds 3]

Each level gets Redis servers of its own on loopback (data in a temporary directory on this
machine's disk) and a `python -m ingest` with that level; wrk (else a small asyncio client)
posts votes to each in turn, round after round, so that all see the same background load.
The best round of each counts; the ratios are against `memory` on an AOF with `everysec`.

| name | ACK_DURABILITY | Redis |
| --- | --- | --- |
| memory | memory | appendonly yes, appendfsync everysec |
| memory-no-aof | memory | appendonly no (the development default) |
| fsync | fsync | appendonly yes, appendfsync always |
| replica | replica (1) | primary (everysec) + one replica (everysec) |
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from loadtest.httpload import LoadFigures, free_port, load
from votecontract.names import (
    ENV_ACK_DURABILITY,
    ENV_HOST,
    ENV_LOG_FORMAT,
    ENV_MAX_BACKLOG,
    ENV_PORT,
    ENV_REDIS_URL,
)

BODY = b'{"option": "cats", "voter_id": "bench-voter"}'
EVERYSEC = ("--appendonly", "yes", "--appendfsync", "everysec")
SETUPS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    # name: (ACK_DURABILITY, primary's arguments, with a replica)
    "memory": ("memory", EVERYSEC, False),
    "memory-no-aof": ("memory", ("--appendonly", "no"), False),
    "fsync": ("fsync", ("--appendonly", "yes", "--appendfsync", "always"), False),
    "replica": ("replica", EVERYSEC, True),
}


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


@contextlib.contextmanager
def redis_server(workdir: Path, *args: str) -> Iterator[int]:
    """A redis-server of the benchmark's own on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    workdir.mkdir(parents=True)
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--dir", str(workdir), "--repl-diskless-sync-delay", "0", *args]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_for_replica(port: int) -> None:
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        client.set("replica-probe", "1")
        if int(client.execute_command("WAIT", 1, 100)) >= 1:  # type: ignore[no-untyped-call]
            return
    raise SystemExit("the replica never caught up")


@contextlib.contextmanager
def setup(name: str, scratch: Path) -> Iterator[str]:
    """The Redis servers and the ingest process of one level; yields ingest's base URL."""
    level, args, replica = SETUPS[name]
    with contextlib.ExitStack() as stack:
        port = stack.enter_context(redis_server(scratch / name, *args))
        if replica:
            replica_args = (*EVERYSEC, "--replicaof", "127.0.0.1", str(port))
            stack.enter_context(redis_server(scratch / f"{name}-replica", *replica_args))
            wait_for_replica(port)
        http_port = free_port()
        env = {**os.environ, ENV_REDIS_URL: f"redis://127.0.0.1:{port}/0",
               ENV_ACK_DURABILITY: level, ENV_HOST: "127.0.0.1", ENV_PORT: str(http_port),
               ENV_LOG_FORMAT: "text", ENV_MAX_BACKLOG: str(10**12)}  # fmt: skip
        log = (scratch / f"{name}-ingest.log").open("wb")
        stack.callback(log.close)
        command = [sys.executable, "-m", "ingest"]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        stack.callback(stop, process)
        base = f"http://127.0.0.1:{http_port}"
        wait_ready(base, process)
        yield base


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"ingest exited with {process.returncode}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(base + "/readyz", timeout=1) as response,  # noqa: S310
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{base} did not become ready")


def run(base: str, args: argparse.Namespace, duration: float) -> LoadFigures:
    return load(base + "/vote", duration, args.connections, BODY, args.client)


def bench(bases: dict[str, str], args: argparse.Namespace) -> dict[str, Result]:
    for base in bases.values():
        run(base, args, min(2, args.duration))  # warm-up
    best: dict[str, Result] = {}
    for round_no in range(1, args.rounds + 1):
        line = []
        for name, base in bases.items():
            rate, p50, p99, errors = run(base, args, args.duration)
            line.append(f"{name} {rate:.0f}")
            if name not in best or rate > best[name].requests_per_s:
                best[name] = Result(name, rate, p50, p99, errors)
        print(f"round {round_no}: " + ", ".join(line) + " req/s")
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="runs per level")
    parser.add_argument("--client", choices=("wrk", "asyncio"), default="wrk")
    args = parser.parse_args()
    client = "wrk" if args.client == "wrk" else "asyncio client (explicit --client asyncio)"
    print(f"load: {client}, {args.connections} connections, "
          f"{args.rounds} x {args.duration}s per level")  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="bench-durability-") as scratch,
        contextlib.ExitStack() as stack,
    ):
        bases = {name: stack.enter_context(setup(name, Path(scratch))) for name in SETUPS}
        results = bench(bases, args)
    baseline = results["memory"]
    print("| level | req/s | p50 ms | p99 ms | non-2xx | req/s vs memory |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for result in results.values():
        ratio = result.requests_per_s / baseline.requests_per_s
        print(f"| {result.name} | {result.requests_per_s:.0f} | {result.p50_ms:.2f} |"
              f" {result.p99_ms:.2f} | {result.errors} | {ratio:.2f}x |")  # fmt: skip
    return 1 if any(result.errors for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
