"""The runner's Redis client for the configured topology (REDIS_MODE), as KEDA's three Redis
stream scalers each have theirs: `Redis`, `RedisCluster`, or the master the sentinels name.
Kept apart from the Job's client (processor.redisclient): the emulator shares no code with the
Job it runs."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection, parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from votecontract.topology import RedisTopology

AnyRedis = aioredis.Redis | aioredis.RedisCluster


def metric_client(url: str, topology: RedisTopology) -> AnyRedis:
    if topology.mode == "cluster":
        return aioredis.RedisCluster.from_url(url, decode_responses=True)
    if topology.mode != "sentinel":
        return aioredis.Redis.from_url(url, decode_responses=True)
    kwargs: dict[str, Any] = dict(parse_url(url))
    tls = kwargs.pop("connection_class", Connection) is SSLConnection
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    sentinel_kwargs = {
        **({k: v for k, v in kwargs.items() if k.startswith("ssl_")} if tls else {}),
        "ssl": tls,
        "username": topology.sentinel_username,
        "password": topology.sentinel_password,
    }
    sentinel = Sentinel(list(topology.sentinels), sentinel_kwargs=sentinel_kwargs, ssl=tls)
    client: aioredis.Redis = sentinel.master_for(
        topology.sentinel_master, redis_class=_SentinelMaster, decode_responses=True, **kwargs
    )
    return client


class _SentinelMaster(aioredis.Redis):
    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        pool = self.connection_pool
        await super().aclose(close_connection_pool)
        if isinstance(pool, SentinelConnectionPool):
            await pool.sentinel_manager.aclose()
