"""What the vote stream and its consumer group hold, read with the commands ingest's ACL user
has (helm/files/redis-users.acl): XINFO GROUPS, XLEN, the XPENDING summary and one XRANGE entry.

Nothing here walks the stream or the pending entries list: each read costs Redis O(1) (the
XPENDING summary O(consumers)), so a scrape costs the same with ten entries or ten million.
Ages come from entry IDs, whose first part is the millisecond Redis accepted the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from ingest.redisclients import AnyRedis
from votecontract.names import StreamNames


@dataclass(frozen=True, slots=True)
class StreamReading:
    """One look at the stream; ages are 0 when there is no such entry."""

    length: int  # XLEN: undelivered, pending and processed-but-not-yet-trimmed entries
    pending: int  # delivered to a Job, not yet acknowledged
    oldest_pending_age_s: float
    oldest_undelivered_age_s: float


async def read_stream(redis: AnyRedis, names: StreamNames, now_ms: int) -> StreamReading | None:
    """The stream's figures as of `now_ms` (Unix ms); None while the stream or the group does
    not exist yet (ingest creates both at start)."""
    group = await _group_info(redis, names)
    if group is None:
        return None
    length = int(await redis.xlen(names.stream))
    summary: dict[str, Any] = await redis.xpending(names.stream, names.group)
    oldest_pending = summary.get("min")
    # The first entry after the group's last-delivered ID: the oldest no Job has read yet.
    last_delivered = _text(group.get("last-delivered-id", "0-0"))
    undelivered = await redis.xrange(names.stream, min=f"({last_delivered}", count=1)
    return StreamReading(
        length=length,
        pending=int(summary.get("pending") or 0),
        oldest_pending_age_s=_age_s(oldest_pending, now_ms),
        oldest_undelivered_age_s=_age_s(undelivered[0][0] if undelivered else None, now_ms),
    )


async def _group_info(redis: AnyRedis, names: StreamNames) -> dict[str, Any] | None:
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(names.stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return None
        raise
    return next((g for g in groups if _text(g.get("name")) == names.group), None)


def combined(readings: list[StreamReading | None]) -> StreamReading | None:
    """The shards' readings as one (VOTE_SHARDS): counts add up, ages are the oldest's."""
    found = [reading for reading in readings if reading is not None]
    if not found:
        return None
    return StreamReading(
        length=sum(reading.length for reading in found),
        pending=sum(reading.pending for reading in found),
        oldest_pending_age_s=max(reading.oldest_pending_age_s for reading in found),
        oldest_undelivered_age_s=max(reading.oldest_undelivered_age_s for reading in found),
    )


def _age_s(entry_id: object, now_ms: int) -> float:
    """Seconds since the entry's ID time; 0 without an entry (or for an ID from the future:
    a clock step back must not make an age negative)."""
    if entry_id is None:
        return 0.0
    millis = int(_text(entry_id).partition("-")[0])
    return max(now_ms - millis, 0) / 1000


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
