"""The consumer groups' backlog over every shard, refreshed in the background, and the group
bootstrap."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from redis.exceptions import RedisError, ResponseError

from ingest.durability import FsyncGuard
from ingest.redisclients import AnyRedis
from ingest.shards import LayoutError
from votecontract.names import StreamNames

logger = logging.getLogger(__name__)


async def ensure_group(redis: AnyRedis, names: StreamNames) -> None:
    """Create the stream and its group at position 0 (never `$`: nothing is ever skipped)."""
    try:
        await redis.xgroup_create(names.stream, names.group, id="0", mkstream=True)
    except ResponseError as exc:
        if not str(exc).startswith("BUSYGROUP"):
            raise
    else:
        logger.info("created consumer group", extra={"stream": names.stream, "group": names.group})


async def read_backlog(redis: AnyRedis, names: StreamNames) -> int | None:
    """Entries not yet delivered to the group (XLEN when Redis reports no lag); None when
    the stream or the group does not exist."""
    try:
        groups = await redis.xinfo_groups(names.stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return None
        raise
    for group in groups:
        if _text(group.get("name")) == names.group:
            lag = group.get("lag")
            return int(lag) if lag is not None else int(await redis.xlen(names.stream))
    return None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class BacklogMonitor:
    """Keeps `over_limit` current so that requests never query Redis for it. The backlog is
    the sum over the shards; `precheck` (the layout guard) must pass once before any shard's
    group is created or the service is ready."""

    def __init__(
        self,
        redis: AnyRedis,
        shards: Sequence[StreamNames],
        max_backlog: int,
        interval: float,
        timeout: float,
        on_refresh: Callable[[int], None] | None = None,
        durability: FsyncGuard | None = None,
        precheck: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._redis = redis
        self._shards = tuple(shards)
        self._precheck = precheck
        self._max_backlog = max_backlog
        self._interval = interval
        self._timeout = timeout
        self._on_refresh = on_refresh
        self._durability = durability
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.backlog: int | None = None
        # Votes wait for the layout guard: written before it passed, they could land where
        # no Job of the recorded layout looks.
        self.over_limit = precheck is not None
        self.ready = False

    @property
    def layout_unchecked(self) -> bool:
        """The layout guard has not passed yet (Redis not reached since the start)."""
        return self._precheck is not None

    async def refresh(self) -> bool:
        """Read the backlog once, creating the group if missing, and check durability again;
        whether Redis and the group are there and Redis is as durable as ACK_DURABILITY
        needs. Redis errors leave the last known backlog in place."""
        try:
            async with asyncio.timeout(self._timeout):
                if self._precheck is not None:
                    await self._precheck()
                    self._precheck = None
                backlog: int | None = 0
                for names in self._shards:
                    shard = await self._shard_backlog(names)
                    backlog = None if shard is None or backlog is None else backlog + shard
                if self._durability is not None:
                    await self._durability.refresh()
        except LayoutError as exc:
            # Votes written now would land where no Job drains them: shed them until an
            # operator fixes VOTE_SHARDS or drains the old layout.
            logger.error("refusing votes: %s", exc)  # noqa: TRY400 (the message is the point)
            self.ready, self.over_limit = False, True
            return False
        except (RedisError, OSError) as exc:
            if self.ready:
                logger.warning("backlog refresh failed", extra={"error": str(exc) or repr(exc)})
            self.ready = False
            return False
        durable = self._durability is None or self._durability.verified
        self.ready = backlog is not None and durable
        if backlog is not None:
            self._set(backlog)
        return self.ready

    async def _shard_backlog(self, names: StreamNames) -> int | None:
        backlog = await read_backlog(self._redis, names)
        if backlog is None:
            await ensure_group(self._redis, names)
            backlog = await read_backlog(self._redis, names)
        return backlog

    def _set(self, backlog: int) -> None:
        self.backlog = backlog
        over = backlog > self._max_backlog
        if over != self.over_limit:
            logger.warning(
                "backlog over limit, shedding votes" if over else "backlog back under limit",
                extra={"backlog": backlog, "max_backlog": self._max_backlog},
            )
        self.over_limit = over
        if self._on_refresh is not None:
            self._on_refresh(backlog)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="backlog-monitor")

    async def aclose(self) -> None:
        # A stop event rather than Task.cancel(): on Python 3.11 a cancel that coincides with
        # the expiry of the asyncio.timeout in refresh() can be swallowed, hanging shutdown.
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stopping.wait()
