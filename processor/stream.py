"""The Redis side of a Job: the consumer group, reading, claiming, acking, dead letters."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from processor.entries import Poison
from votecontract.names import FIELD_DEAD_ORIGINAL_ID, FIELD_DEAD_REASON, StreamNames

logger = logging.getLogger(__name__)
C = TypeVar("C", bound=AbstractConnection)

# [ID, fields] as hiredis parsed it; fields None: the entry no longer exists. A list, not a
# tuple: rebuilding thousands of entries per batch only to change their type costs CPU.
RawEntry = Sequence[Any]
# The dead-letter stream is a mirror for operators: every dead letter is also in the
# dead_letters table (same transaction as the batch), so Redis keeps only the newest ones.
DEAD_LETTER_MAXLEN = 100_000


def _raw(response: Any, **options: Any) -> Any:
    return response


class _HiredisPacking(AbstractConnection):
    """Packs commands in C: redis-py's Python packer cost a fifth of the Job's CPU, most of it
    in the XACK of each batch's thousands of IDs."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # "CONFIG GET"-style names
            return super().pack_command(*args)
        return [hiredis.pack_command(args)]


def packed_class(base: type[C]) -> type[C]:
    return type(f"Packed{base.__name__}", (_HiredisPacking, base), {})


def with_hiredis_packing(client: aioredis.Redis) -> aioredis.Redis:
    """`client`, its connections (TCP, TLS or Unix socket alike) packing commands in C."""
    pool = client.connection_pool
    pool.connection_class = packed_class(pool.connection_class)
    return client


def is_missing_group(exc: ResponseError) -> bool:
    """The group (or the whole stream) is gone: Redis lost its data or someone deleted it."""
    return str(exc).startswith("NOGROUP")


class VoteStream:
    """One consumer of the vote stream's group."""

    def __init__(
        self, redis: aioredis.Redis | aioredis.RedisCluster, names: StreamNames, consumer: str
    ) -> None:
        self.redis = redis
        self.names = names
        self.consumer = consumer
        # Parse replies ourselves: redis-py's dicts would hide repeated field names.
        for command in ("XREADGROUP", "XAUTOCLAIM", "XPENDING", "XRANGE"):
            redis.set_response_callback(command, _raw)

    @classmethod
    def from_url(cls, url: str, names: StreamNames, consumer: str) -> VoteStream:
        """Values stay bytes: an entry that is not UTF-8 must reach validation intact."""
        client = aioredis.Redis.from_url(url, protocol=2, decode_responses=False)
        return cls(with_hiredis_packing(client), names, consumer)

    async def _command(self, *args: Any) -> Any:
        return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call,unused-ignore]

    async def close(self) -> None:
        await self.redis.aclose()

    async def ensure_group(self) -> bool:
        """Create the group at 0 (so lag is never NULL) unless it exists; True if created.

        Looked up first: Redis refuses `XGROUP CREATE` (a `denyoom` command) at `maxmemory`
        even when the group exists, and a Job must still run then, as acking and trimming
        is what gives the memory back.
        """
        if await self.has_group():
            return False
        try:
            await self.redis.xgroup_create(self.names.stream, self.names.group, "0", mkstream=True)
        except ResponseError as exc:
            if str(exc).startswith("BUSYGROUP"):
                return False
            raise
        return True

    async def has_group(self) -> bool:
        try:
            groups = await self.redis.xinfo_groups(self.names.stream)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return False
            raise
        wanted = self.names.group.encode()
        return any(group.get("name") in (wanted, self.names.group) for group in groups)

    async def read_pending(self, after: bytes, count: int) -> list[RawEntry]:
        """This consumer's own pending entries with IDs above `after` (a retried pod's work)."""
        return await self._read_group(after, count)

    async def read_new(self, count: int) -> list[RawEntry]:
        return await self._read_group(b">", count)

    async def _read_group(self, start: bytes, count: int) -> list[RawEntry]:
        reply = await self._command(
            "XREADGROUP", "GROUP", self.names.group, self.consumer, "COUNT", count,
            "STREAMS", self.names.stream, start,
        )  # fmt: skip
        if not reply:
            return []
        entries: list[RawEntry] = reply[0][1]
        return entries

    async def claim(
        self, cursor: bytes, min_idle_ms: int, count: int
    ) -> tuple[bytes, list[RawEntry], list[bytes]]:
        """XAUTOCLAIM: next cursor, claimed entries, and IDs pending but no longer stored."""
        reply = await self._command(
            "XAUTOCLAIM", self.names.stream, self.names.group, self.consumer, min_idle_ms,
            cursor, "COUNT", count,
        )  # fmt: skip
        deleted = list(reply[2]) if len(reply) > 2 else []
        return reply[0], reply[1], deleted

    async def fields_of(self, entry_id: bytes) -> Sequence[bytes] | None:
        """One entry's flat field list as it is in the stream; None if it is gone."""
        reply = await self._command("XRANGE", self.names.stream, entry_id, entry_id)
        return reply[0][1] if reply else None

    async def delivery_counts(self, first: bytes, last: bytes, count: int) -> dict[bytes, int]:
        """How often each of this consumer's pending entries in [first, last] was delivered."""
        reply = await self._command(
            "XPENDING", self.names.stream, self.names.group, first, last, count, self.consumer
        )
        return {row[0]: int(row[3]) for row in reply}

    async def settle(self, ids: Sequence[bytes], dead: Sequence[Poison]) -> int:
        """Ack `ids`, then mirror the dead letters to `<stream>:dead`; return how many
        mirror writes Redis refused.

        No MULTI: Redis refuses any MULTI at `maxmemory`, where XACK alone still runs. The
        mirror is best effort (PostgreSQL's dead_letters table, committed before this, is the
        record): a refused XADD (OOM, say) is counted and never holds back the ack. Acking
        first means a crash between the two loses a mirror entry rather than repeating one.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            if ids:
                pipe.xack(self.names.stream, self.names.group, *ids)
            for poison in dead:
                pipe.execute_command(
                    "XADD", self.names.dead_letter, "MAXLEN", "~", DEAD_LETTER_MAXLEN, "*",
                    *poison.fields,
                    FIELD_DEAD_ORIGINAL_ID, poison.entry_id, FIELD_DEAD_REASON, poison.reason,
                )  # fmt: skip
            replies = await pipe.execute(raise_on_error=False)
        if ids and isinstance(replies[0], Exception):
            raise replies[0]
        refused = [reply for reply in replies[1 if ids else 0 :] if isinstance(reply, Exception)]
        if refused:
            logger.warning(
                "dead-letter mirror write refused; the dead letters are in PostgreSQL",
                extra={"count": len(refused), "error": str(refused[0])},
            )
        return len(refused)
