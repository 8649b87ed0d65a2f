"""The resources an app instance owns for its lifetime, opened and closed by its lifespan.

To add a resource (a database pool, say), add a field to AppState and open it on the exit
stack in `open_state`: it is then closed in reverse order at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from ingest.backlog import BacklogMonitor
from ingest.durability import Durability, FsyncGuard
from ingest.metrics import IngestMetrics
from ingest.redisclients import AnyRedis, WriterConnections, command_client, watching_masters
from ingest.settings import IngestSettings
from ingest.shards import ADD_SCRIPT, ShardedWriter, add_command, check_layout
from ingest.streamids import RecordableIds
from ingest.writer import Replicas, StreamWriter
from votecontract.environment import redact_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppState:
    settings: IngestSettings
    metrics: IngestMetrics
    redis: AnyRedis
    writer: ShardedWriter
    backlog: BacklogMonitor
    durability: FsyncGuard
    stream_ids: RecordableIds = field(default_factory=RecordableIds)


@contextlib.asynccontextmanager
async def open_state(settings: IngestSettings, metrics: IngestMetrics) -> AsyncIterator[AppState]:
    """Open Redis, the writers and the backlog monitor; on exit drain the writers and close.

    Redis being unreachable at start does not fail the start: /readyz answers 503 and the
    backlog monitor keeps trying to create the groups until Redis is back. A Redis that is
    reachable and does not meet ACK_DURABILITY=fsync does (DurabilityError), and so does a
    VOTE_SHARDS that would strand votes of another layout (shards.LayoutError).
    """
    async with contextlib.AsyncExitStack() as stack:
        redis = command_client(
            settings.redis_url,
            settings.topology,
            decode_responses=True,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
        )
        stack.push_async_callback(redis.aclose)
        durability = FsyncGuard(redis, settings.ack_durability)
        async with asyncio.timeout(settings.redis_timeout_s * 2):
            await durability.check_at_start()
        layout_checked = await _check_layout_now(redis, settings)
        connections = [
            _connections(stack, redis, settings, shard) for shard in range(settings.topology.shards)
        ]
        writer = ShardedWriter(
            [
                _shard_writer(settings, metrics, shard, shard_connections)
                for shard, shard_connections in enumerate(connections)
            ],
            settings.topology,
        )
        await writer.start()
        stack.push_async_callback(writer.aclose)
        backlog = BacklogMonitor(
            redis,
            settings.topology.streams(settings.names),
            settings.max_backlog,
            settings.backlog_refresh_s,
            settings.redis_timeout_s,
            on_refresh=metrics.backlog.set,
            durability=durability,
            precheck=None
            if layout_checked
            else lambda: check_layout(redis, settings.names, settings.topology),
        )
        if not await backlog.refresh():
            logger.warning(
                "redis or the consumer group is not available yet; not ready",
                extra={"redis_url": redact_url(settings.redis_url)},
            )
        backlog.start()
        stack.push_async_callback(backlog.aclose)
        if settings.topology.mode == "sentinel":
            await stack.enter_async_context(
                watching_masters(connections, settings.backlog_refresh_s)
            )
        yield AppState(settings, metrics, redis, writer, backlog, durability)


def _replicas(settings: IngestSettings) -> Replicas | None:
    if settings.ack_durability is not Durability.REPLICA:
        return None
    return Replicas(settings.ack_replicas, settings.ack_replica_timeout_s)


async def _check_layout_now(redis: AnyRedis, settings: IngestSettings) -> bool:
    """Whether the layout guard passed; LayoutError (fatal) passes through, and Redis being
    unreachable leaves the check to the backlog monitor."""
    try:
        async with asyncio.timeout(settings.redis_timeout_s):
            await check_layout(redis, settings.names, settings.topology)
    except (RedisError, OSError, TimeoutError):
        return False
    return True


def _connections(
    stack: contextlib.AsyncExitStack, redis: AnyRedis, settings: IngestSettings, shard: int
) -> WriterConnections:
    topology = settings.topology
    connections = WriterConnections(
        settings.redis_url,
        topology,
        topology.streams(settings.names)[shard].stream,
        settings.redis_timeout_s,
        script=ADD_SCRIPT if topology.shards > 1 else None,
        cluster=redis if isinstance(redis, RedisCluster) else None,
    )
    stack.push_async_callback(connections.aclose)
    return connections


def _shard_writer(
    settings: IngestSettings, metrics: IngestMetrics, shard: int, connections: WriterConnections
) -> StreamWriter:
    topology = settings.topology
    names = topology.streams(settings.names)[shard]
    return StreamWriter(
        connections,
        names.stream,
        settings.redis_timeout_s,
        on_batch=metrics.batch_size.observe,
        replicas=_replicas(settings),
        command=add_command(names, shard, topology.shards),
    )
