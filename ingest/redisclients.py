"""The ingest service's Redis clients for the configured topology (REDIS_MODE).

- Commands (backlog, status, results): redis-py's `Redis`, `RedisCluster`, or the master
  `Sentinel.master_for` names; credentials and TLS always come from REDIS_URL.
- The stream writer's own connections (`writer_connections`): one per shard, located anew on
  every reconnect: the URL's host, the node serving the shard's slot, or the master the
  sentinels name. A reply that says the topology moved (MOVED, ASK, TRYAGAIN, CLUSTERDOWN,
  READONLY) or that the server lost the script (NOSCRIPT) drops the connection: the writer
  fails that batch (503, the client retries) and the next batch connects where Redis is now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    TryAgainError,
)

from votecontract.topology import RedisTopology

logger = logging.getLogger(__name__)

AnyRedis = Redis | RedisCluster
Locate = Callable[[], Awaitable[tuple[str, int]]]
# MovedError is an AskError.
_MOVED_ON = (AskError, TryAgainError, ClusterDownError, ReadOnlyError, NoScriptError)


def url_kwargs(url: str) -> tuple[dict[str, Any], bool]:
    """Connection keyword arguments of REDIS_URL (credentials, TLS files, db) and whether
    it asks for TLS; host and port left in for standalone use."""
    kwargs: dict[str, Any] = dict(parse_url(url))
    tls = kwargs.pop("connection_class", Connection) is SSLConnection
    return kwargs, tls


def command_client(url: str, topology: RedisTopology, **options: Any) -> AnyRedis:
    """A client for ordinary commands; `options` are redis-py's (timeouts, decoding)."""
    if topology.mode == "cluster":
        return RedisCluster.from_url(url, **options)
    if topology.mode == "sentinel":
        kwargs, tls = url_kwargs(url)
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        sentinel = sentinel_manager(topology, tls, kwargs, options)
        client: Redis = sentinel.master_for(
            topology.sentinel_master, redis_class=SentinelMasterRedis, **kwargs, **options
        )
        return client
    return Redis.from_url(url, **options)


def sentinel_manager(
    topology: RedisTopology, tls: bool, kwargs: dict[str, Any], options: dict[str, Any]
) -> Sentinel:
    """Sentinels are reached with REDIS_URL's TLS settings and their own credentials."""
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    tls_kwargs = {k: v for k, v in kwargs.items() if k.startswith("ssl_")} if tls else {}
    sentinel_kwargs = {
        **timeouts,
        **tls_kwargs,
        "ssl": tls,
        "username": topology.sentinel_username,
        "password": topology.sentinel_password,
    }
    return Sentinel(list(topology.sentinels), sentinel_kwargs=sentinel_kwargs, ssl=tls)


class SentinelMasterRedis(Redis):
    """The master's client; closing it also closes the sentinel clients that locate it."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        pool = self.connection_pool
        await super().aclose(close_connection_pool)
        if isinstance(pool, SentinelConnectionPool):
            await pool.sentinel_manager.aclose()


class _WriterConnection(AbstractConnection):
    """Mixin of the writer's connections: locate the server on connect, load the shard's
    script, and turn "Redis is elsewhere now" replies into a lost connection."""

    def __init__(self, *, locate: Locate | None = None, script: str | None = None, **kwargs: Any):
        self._locate = locate
        self._script = script
        self._retired = False
        super().__init__(**kwargs)

    async def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        # redis-py reconnects a closed connection by itself on the next send; closed from
        # outside the writer (`check_master`), that socket would be one nobody reads.
        if self._retired:
            raise ConnectionError("this writer connection was closed; the writer opens another")
        await super().connect_check_health(*args, **kwargs)

    async def disconnect(self, *args: Any, **kwargs: Any) -> None:
        if self.is_connected:
            self._retired = True
        await super().disconnect(*args, **kwargs)

    async def connect(self) -> None:
        if self._locate is not None and not self.is_connected:
            self.host, self.port = await self._locate()
        await super().connect()  # type: ignore[no-untyped-call]
        if self._script is not None:
            await self.send_command("SCRIPT", "LOAD", self._script)
            await super().read_response()

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except _MOVED_ON as exc:
            await self.disconnect(nowait=True)
            raise ConnectionError(f"redis moved or lost state: {exc!r}") from exc


def _writer_class(base: type[AbstractConnection]) -> type[AbstractConnection]:
    return type(f"Writer{base.__name__}", (_WriterConnection, base), {})


class WriterConnections:
    """New connections for the writer of `key`'s stream (call the object), with no socket
    timeout and no retries of redis-py's own: batch deadlines bound every wait and the writer
    reconnects per batch. `aclose()` releases what locates the server (sentinel clients)."""

    def __init__(
        self,
        url: str,
        topology: RedisTopology,
        key: str,
        connect_timeout: float,
        *,
        script: str | None = None,
        cluster: RedisCluster | None = None,
    ) -> None:
        kwargs, tls = url_kwargs(url)
        kwargs |= {
            "socket_timeout": None,
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(NoBackoff(), 0),
            "script": script,
        }
        self._sentinel: Sentinel | None = None
        self._master = topology.sentinel_master
        self._last: AbstractConnection | None = None
        if topology.mode == "sentinel":
            kwargs.pop("host", None)
            kwargs.pop("port", None)
            base = SentinelManagedSSLConnection if tls else SentinelManagedConnection
            timeouts = {"socket_timeout": connect_timeout}
            self._sentinel = sentinel_manager(topology, tls, kwargs, timeouts)
            pool = SentinelConnectionPool(  # type: ignore[no-untyped-call]
                topology.sentinel_master,
                self._sentinel,
                connection_class=_writer_class(base),
                **kwargs,
            )
            self._make: Callable[[], AbstractConnection] = pool.make_connection
            return
        connection_class = _writer_class(SSLConnection if tls else Connection)
        if topology.mode == "cluster":
            if cluster is None:
                raise ValueError("cluster mode needs the cluster client to locate slots")
            kwargs["locate"] = ClusterLocator(cluster, key)
        self._make = lambda: connection_class(**kwargs)

    def __call__(self) -> AbstractConnection:
        self._last = self._make()
        return self._last

    async def check_master(self) -> None:
        """Sentinel mode: drop the writer's connection once the sentinels name another master.

        An old master that stays up through a failover (SENTINEL FAILOVER, a partition) keeps
        answering XADD until the sentinels turn it into a replica, about 8 s later by default,
        and every vote it took meanwhile is discarded then: measured, 9552 of 13904 votes
        acknowledged during a forced failover (docs/redis-topologies.md). Checked every
        BACKLOG_REFRESH_S, the window shrinks to that; ACK_DURABILITY=replica closes it.
        """
        conn = self._last
        if self._sentinel is None or conn is None or not conn.is_connected:
            return
        host, port = await self._sentinel.discover_master(self._master)
        if (getattr(conn, "host", None), getattr(conn, "port", None)) != (host, int(port)):
            await conn.disconnect(nowait=True)

    async def aclose(self) -> None:
        if self._sentinel is not None:
            await self._sentinel.aclose()


class ClusterLocator:
    """The node serving `key`'s slot; asks the cluster again on every reconnect after the
    first (a reconnect follows a failover, a moved slot, or a node that went away)."""

    def __init__(self, cluster: RedisCluster, key: str) -> None:
        self._cluster = cluster
        self._key = key
        self._refresh = False

    async def __call__(self) -> tuple[str, int]:
        await self._cluster.initialize()
        if self._refresh:
            await self._cluster.nodes_manager.initialize()
        self._refresh = True
        node = self._cluster.get_node_from_key(self._key)
        if node is None:
            raise ConnectionError(f"no cluster node serves {self._key!r}")
        return node.host, int(node.port)


@contextlib.asynccontextmanager
async def watching_masters(
    connections: Sequence[WriterConnections], interval: float
) -> AsyncIterator[None]:
    """While open, `check_master` of every shard's writer every `interval` seconds."""
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            for shard in connections:
                try:
                    await shard.check_master()
                except (RedisError, OSError) as exc:
                    logger.debug("sentinels not asked", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stop.wait()

    task = asyncio.create_task(watch(), name="sentinel-master-watch")
    try:
        yield
    finally:
        stop.set()
        await task
