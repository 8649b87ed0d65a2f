"""Throwaway Redis servers for durability tests: AOF settings, and a primary with a replica."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import redis.asyncio as aioredis

from tests.support.servers import ThrowawayRedis, free_port

FSYNC_ALWAYS = ("--appendonly", "yes", "--appendfsync", "always")
FSYNC_EVERYSEC = ("--appendonly", "yes", "--appendfsync", "everysec")


# A primary sends its first full sync at once (Redis waits 5 s for more replicas by default).
PRIMARY = ("--repl-diskless-sync-delay", "0")


def replica_of(primary: ThrowawayRedis, workdir: Path, *args: str) -> ThrowawayRedis:
    return throwaway(workdir, "--replicaof", "127.0.0.1", str(primary.port), *args)


def throwaway(workdir: Path, *args: str) -> ThrowawayRedis:
    workdir.mkdir(parents=True, exist_ok=True)
    return ThrowawayRedis(port=free_port(), workdir=workdir, extra_args=args)


@contextlib.contextmanager
def running(*servers: ThrowawayRedis) -> Iterator[None]:
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in reversed(servers):
            resume(server)
            server.stop()


def pause(server: ThrowawayRedis) -> None:
    """SIGSTOP: the server keeps its connections but answers nothing (a hung node)."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)


def resume(server: ThrowawayRedis) -> None:
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)


async def wait_for_replicas(primary: aioredis.Redis, count: int) -> None:
    """Until `count` replicas have a write made now (WAIT counts the replicas that acknowledged
    this client's last write: after a full sync a replica streams only from its first ACK)."""
    for _ in range(500):
        await primary.set("replica-probe", "1")
        if int(await primary.execute_command("WAIT", count, 100)) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} replica(s) never caught up")


async def wait_loaded(url: str) -> None:
    """Until a restarted server has loaded its AOF (until then it answers LOADING)."""
    async with aioredis.Redis.from_url(url) as redis:
        for _ in range(1000):
            if int((await redis.info("persistence"))["loading"]) == 0:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("redis never finished loading")
