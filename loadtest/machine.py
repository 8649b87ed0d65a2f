"""A description of the machine a benchmark ran on, for the report."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

import asyncpg
import redis
from redis.exceptions import RedisError


def _first_value(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return "unknown"


def redis_version(url: str) -> str:
    try:
        info = redis.Redis.from_url(url).info("server")
    except RedisError as exc:
        return f"unreachable ({type(exc).__name__})"
    return str(info.get("redis_version", "unknown"))


async def _postgres_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def postgres_version(url: str) -> str:
    try:
        return asyncio.run(_postgres_version(url))
    except (OSError, asyncpg.PostgresError) as exc:
        return f"unreachable ({type(exc).__name__})"


def _wrk_version() -> str:
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    return (done.stdout + done.stderr).split("[")[0].strip() or "unknown"


def describe_machine(redis_url: str, database_url: str) -> dict[str, str]:
    memory_kib = _first_value("/proc/meminfo", "MemTotal").removesuffix(" kB")
    memory = f"{int(memory_kib) / 2**20:.1f} GiB" if memory_kib.isdigit() else "unknown"
    return {
        "CPU": _first_value("/proc/cpuinfo", "model name"),
        "cores (nproc)": str(len(os.sched_getaffinity(0))),
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Redis": redis_version(redis_url),
        "PostgreSQL": postgres_version(database_url),
        "locust": version("locust"),
        "wrk": _wrk_version(),
    }
