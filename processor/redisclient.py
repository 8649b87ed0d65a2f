"""The Job's Redis client for the configured topology (REDIS_MODE): redis-py's `Redis`,
`RedisCluster` (commands routed by their key's slot, following MOVED/ASK), or the master
`Sentinel.master_for` names (asked again after a failover). Credentials and TLS come from
REDIS_URL in every mode; sentinels have their own credentials.

Values stay bytes (an entry that is not UTF-8 must reach validation intact), replies are RESP2
(the Job parses stream replies itself) and commands are packed in C (`stream._HiredisPacking`).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection, parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from processor.stream import packed_class, with_hiredis_packing
from votecontract.topology import RedisTopology

AnyRedis = aioredis.Redis | aioredis.RedisCluster
# Every command here answers within milliseconds (an XREADGROUP of 10,000 entries, about 1 MB,
# in 10-40 ms on this 2-core machine); one unanswered after this long is on a stalled or
# half-open connection, and is retried on a new one rather than waited on to the end of
# MAX_RUNTIME_S. Stated here, not left to redis-py's default (5 s since 6.0, none before).
SOCKET_TIMEOUT_S = 5.0
SOCKET_CONNECT_TIMEOUT_S = 5.0


def _options() -> dict[str, Any]:
    return {
        "protocol": 2,
        "decode_responses": False,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": SOCKET_CONNECT_TIMEOUT_S,
        "socket_keepalive": True,
    }


def job_client(url: str, topology: RedisTopology) -> AnyRedis:
    if topology.mode == "cluster":
        cluster = aioredis.RedisCluster.from_url(url, **_options())
        # Nodes found later are built from these kwargs; the startup node exists already.
        kwargs = cluster.nodes_manager.connection_kwargs
        kwargs["connection_class"] = packed_class(kwargs.get("connection_class", Connection))
        for node in cluster.nodes_manager.startup_nodes.values():
            node.connection_class = packed_class(node.connection_class)
        return cluster
    if topology.mode == "sentinel":
        return with_hiredis_packing(sentinel_master(url, topology, **_options()))
    return with_hiredis_packing(aioredis.Redis.from_url(url, **_options()))


def sentinel_master(url: str, topology: RedisTopology, **options: Any) -> aioredis.Redis:
    """The master's client; REDIS_URL gives credentials, TLS and database, not the host."""
    kwargs: dict[str, Any] = dict(parse_url(url))
    tls = kwargs.pop("connection_class", Connection) is SSLConnection
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    sentinel_kwargs = {
        **{k: v for k, v in options.items() if k.startswith("socket_")},
        **({k: v for k, v in kwargs.items() if k.startswith("ssl_")} if tls else {}),
        "ssl": tls,
        "username": topology.sentinel_username,
        "password": topology.sentinel_password,
    }
    sentinel = Sentinel(list(topology.sentinels), sentinel_kwargs=sentinel_kwargs, ssl=tls)
    client: aioredis.Redis = sentinel.master_for(
        topology.sentinel_master, redis_class=SentinelMasterRedis, **kwargs, **options
    )
    return client


class SentinelMasterRedis(aioredis.Redis):
    """Closing the master's client also closes the sentinel clients that locate it."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        pool = self.connection_pool
        await super().aclose(close_connection_pool)
        if isinstance(pool, SentinelConnectionPool):
            await pool.sentinel_manager.aclose()
