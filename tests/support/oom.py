"""Putting a Redis of a test's own over `maxmemory` (`noeviction`), where it refuses writes.

Filling a Redis up to its limit leaves it flickering around it (a client's query buffer alone
is tens of KiB), so a test that needs OOM to last lowers `maxmemory` below what is used,
well under it: Redis is then out of memory for the test's whole length, trims included.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import OutOfMemoryError

_FILLER = b"x" * 64 * 1024
_FILLER_KEYS = 32  # 2 MiB that no trim frees


async def make_oom(redis: aioredis.Redis, prefix: str = "filler:") -> None:
    """Write 2 MiB of filler, then set `maxmemory` to half of the memory in use."""
    for key in range(_FILLER_KEYS):
        await redis.set(f"{prefix}{key}", _FILLER)
    used = int((await redis.info("memory"))["used_memory"])
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", used // 2)


async def end_oom(redis: aioredis.Redis) -> None:
    await redis.config_set("maxmemory", 0)


async def is_oom(redis: aioredis.Redis) -> bool:
    """Whether Redis refuses a (denyoom) write right now; the probe key is removed again."""
    try:
        await redis.set("oom-probe", b"")
    except OutOfMemoryError:
        return True
    await redis.delete("oom-probe")
    return False
