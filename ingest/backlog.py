"""How many accepted votes are not yet recorded, read from the consumer group in Redis."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ingest.names import StreamNames


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def unrecorded_votes(redis: aioredis.Redis, names: StreamNames) -> int:
    """Entries not yet delivered to the group (lag) plus delivered but not yet acked (pending).

    Where Redis reports no lag (see the notes on XDEL) or the group does not exist yet, the
    stream's length stands in: an upper bound, never an undercount.
    """
    try:
        groups: list[dict[Any, Any]] = await redis.xinfo_groups(names.stream)
    except ResponseError:
        return 0  # no stream yet: nothing was ever accepted
    for group in groups:
        fields = {_text(key): value for key, value in group.items()}
        if _text(fields["name"]) != names.group:
            continue
        lag = fields.get("lag")
        undelivered = int(lag) if lag is not None else int(await redis.xlen(names.stream))
        return undelivered + int(fields["pending"])
    return int(await redis.xlen(names.stream))
