"""Where the CPU of one vote goes, deterministically: cProfile around exactly N requests.

    python -m loadtest.profile_ingest [--target ingest|bare] [--requests 20000]
                                      [--connections 64] [--top 30] [--out FILE.prof]

The server runs in this process's main thread: `ingest` is the uvicorn server `python -m
ingest` builds (ingest.__main__.uvicorn_config, the image's environment, a stream of its
own); `bare` is bench_ingest's bare Starlette app with the same uvicorn settings. A client
subprocess sends a warm-up, then the profiler is switched on in the server's thread, a second
client sends exactly N votes, and it is switched off. Function calls per request do not
depend on the machine's load (the same path makes the same calls); times are the server
thread's CPU time (time.thread_time), so other processes do not inflate them.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
import uvicorn
import uvloop

from ingest.__main__ import uvicorn_config
from ingest.settings import IngestSettings
from loadtest.bench_ingest import BODY, bare_app
from loadtest.entrypoint import DOCKERFILE, image_env
from loadtest.httpload import free_port
from votecontract.names import ENV_HOST, ENV_MAX_BACKLOG, ENV_PORT, ENV_VOTE_STREAM

WARM_UP = 2000


def request_bytes(port: int) -> bytes:
    head = (f"POST /vote HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n")  # fmt: skip
    return head.encode() + BODY


async def _connection(port: int, count: int, statuses: list[bytes]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = request_bytes(port)
    for _ in range(count):
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        statuses.append(head[9:12])
    writer.close()


async def send(port: int, count: int, connections: int) -> list[bytes]:
    """Exactly `count` POST /vote requests (rounded down to a multiple of `connections`)."""
    statuses: list[bytes] = []
    share = count // connections
    await asyncio.gather(*(_connection(port, share, statuses) for _ in range(connections)))
    return statuses


def client(port: int, count: int, connections: int) -> None:
    command = [sys.executable, "-m", "loadtest.profile_ingest", "--client-port", str(port),
               "--requests", str(count), "--connections", str(connections)]  # fmt: skip
    subprocess.run(command, check=True)


def ingest_server(port: int, stream: str) -> uvicorn.Server:
    env = {**os.environ, **image_env(DOCKERFILE.read_text(encoding="utf-8"))}
    env.update({ENV_HOST: "127.0.0.1", ENV_PORT: str(port), ENV_VOTE_STREAM: stream,
                ENV_MAX_BACKLOG: str(10**12)})  # fmt: skip
    return uvicorn.Server(uvicorn_config(IngestSettings.from_env(env)))


def bare_server(port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        bare_app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
        access_log=False, server_header=False, limit_concurrency=4096, timeout_keep_alive=5,
        log_level="warning",
    )  # fmt: skip
    return uvicorn.Server(config)


def in_server_thread(loop: asyncio.AbstractEventLoop, action: Callable[[], None]) -> None:
    """Run `action` in the server's thread (cProfile profiles the thread it is enabled in)."""
    done = threading.Event()

    def run() -> None:
        action()
        done.set()

    loop.call_soon_threadsafe(run)
    done.wait()


def control(server: uvicorn.Server, port: int, profiler: cProfile.Profile, args: argparse.Namespace,
            result: dict[str, float]) -> None:  # fmt: skip
    """In a thread: wait for the server, warm it up, profile exactly N requests, stop it."""
    while not server.started:
        time.sleep(0.05)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5):
        pass
    client(port, WARM_UP, args.connections)
    loop = server_loop[0]
    in_server_thread(loop, profiler.enable)
    started = time.perf_counter()
    client(port, args.requests, args.connections)
    result["wall_s"] = time.perf_counter() - started
    in_server_thread(loop, profiler.disable)
    server.should_exit = True


server_loop: list[asyncio.AbstractEventLoop] = []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client_port:
        statuses = asyncio.run(send(args.client_port, args.requests, args.connections))
        bad = [s for s in statuses if not s.startswith(b"2")]
        return 1 if bad else 0
    args.requests -= args.requests % args.connections
    port, stream = free_port(), f"bench:profile:{uuid.uuid4().hex[:8]}"
    server = ingest_server(port, stream) if args.target == "ingest" else bare_server(port)
    profiler = cProfile.Profile(time.thread_time)
    result: dict[str, float] = {}

    async def serve() -> None:
        server_loop.append(asyncio.get_running_loop())
        await server.serve()

    thread = threading.Thread(target=control, args=(server, port, profiler, args, result))
    thread.start()
    try:
        uvloop.run(serve())  # the loop `python -m ingest` runs on (uvicorn's loop "auto")
    finally:
        thread.join()
        redis.Redis.from_url(IngestSettings.from_env({}).redis_url).delete(stream)
    report(profiler, args, result)
    return 0


def report(profiler: cProfile.Profile, args: argparse.Namespace, result: dict[str, float]) -> None:
    stats = pstats.Stats(profiler)
    n = args.requests
    total_calls = stats.total_calls  # type: ignore[attr-defined]
    print(f"{args.target}: {n} requests over {args.connections} connections,"
          f" {result.get('wall_s', 0):.1f} s wall")  # fmt: skip
    print(f"function calls per request: {total_calls / n:.1f}"
          f"   server thread CPU per request: {stats.total_tt / n * 1e6:.0f} us (profiled)")  # type: ignore[attr-defined]  # fmt: skip
    print(f"\ntop {args.top} by own CPU time, per request:")
    print(f"{'calls':>7} {'own us':>8} {'cum us':>8}  function")
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    for (path, line, name), (_, calls, own, cum, _) in rows[: args.top]:
        where = f"{Path(path).name}:{line}({name})" if path != "~" else name
        print(f"{calls / n:7.2f} {own / n * 1e6:8.2f} {cum / n * 1e6:8.2f}  {where}")
    if args.out:
        stats.dump_stats(args.out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("ingest", "bare"), default="ingest")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, help="write the pstats file here")
    parser.add_argument("--client-port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
