"""Votes over VOTE_SHARDS streams: one writer per shard, the voter's shard chosen by a stable
hash, and the guard that keeps a changed shard count from stranding votes.

With one shard a vote is a plain `XADD <stream> *`, as always. With N > 1 every shard's XADD
runs `ADD_SCRIPT`, which picks an ID whose millisecond part is congruent to the shard modulo N:
IDs stay unique over all shards (PostgreSQL keys votes by stream ID) and a vote ID names its
shard (`ms % N`), with no coordination between ingest pods (votecontract/topology.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from redis.exceptions import NoPermissionError, ResponseError

from ingest.redisclients import AnyRedis
from ingest.writer import StreamWriter
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology, layout_key

logger = logging.getLogger(__name__)

# KEYS[1]: the shard's stream; ARGV: shard, N, then the entry's fields. The server's clock
# (TIME) rounded up to the shard's residue; if the stream's last ID is ahead of it (a clock
# step back), the first such millisecond at or after the last ID instead, where `<ms>-*` then
# takes the next sequence number.
ADD_SCRIPT = """
local shard, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = now + (shard - now) % n
local reply = redis.pcall('XADD', KEYS[1], string.format('%.0f-*', ms), unpack(ARGV, 3))
if type(reply) == 'table' and reply.err then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    local last = now
    for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' then
            last = tonumber(string.match(info[i + 1], '^(%d+)'))
        end
    end
    ms = last + (shard - last) % n
    reply = redis.call('XADD', KEYS[1], string.format('%.0f-*', ms), unpack(ARGV, 3))
end
return reply
"""
ADD_SCRIPT_SHA = hashlib.sha1(ADD_SCRIPT.encode(), usedforsecurity=False).hexdigest()


class LayoutError(RuntimeError):
    """VOTE_SHARDS differs from the layout in Redis while old shards still hold votes."""


def add_command(names: StreamNames, shard: int, shards: int) -> tuple[str | int, ...] | None:
    """What precedes an entry's fields in shard `shard`'s writer (None: plain XADD)."""
    if shards == 1:
        return None
    return ("EVALSHA", ADD_SCRIPT_SHA, 1, names.stream, shard, shards)


class ShardedWriter:
    """The writers of every shard; `for_voter` is the one a voter's votes go to."""

    def __init__(self, writers: Sequence[StreamWriter], topology: RedisTopology) -> None:
        if len(writers) != topology.shards:
            raise ValueError("one writer per shard")
        self.writers = tuple(writers)
        self._topology = topology

    def for_voter(self, voter_id: str) -> StreamWriter:
        return self.writers[self._topology.shard_of_voter(voter_id)]

    async def start(self) -> None:
        for writer in self.writers:
            await writer.start()

    async def aclose(self) -> None:
        for writer in self.writers:
            await writer.aclose()


async def undrained(redis: AnyRedis, names: StreamNames) -> int:
    """Votes in the stream not yet recorded: undelivered plus pending (XLEN without a group;
    lag unknown counts the whole stream)."""
    try:
        groups = await redis.xinfo_groups(names.stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return 0
        raise
    for group in groups:
        name = group.get("name")
        if (name.decode() if isinstance(name, bytes) else str(name)) == names.group:
            lag = group.get("lag")
            if lag is None:
                return int(await redis.xlen(names.stream))
            return int(lag) + int(group.get("pending") or 0)
    return int(await redis.xlen(names.stream))


async def _undrained_if_allowed(redis: AnyRedis, names: StreamNames) -> int:
    """`undrained`, or 0 when ingest's ACL user may not read that stream: an operator who
    granted only the new layout's streams has left the old one behind on purpose."""
    try:
        return await undrained(redis, names)
    except NoPermissionError:
        logger.warning("cannot check the old layout's stream", extra={"stream": names.stream})
        return 0


async def check_layout(redis: AnyRedis, base: StreamNames, topology: RedisTopology) -> None:
    """Record VOTE_SHARDS in Redis, or refuse (LayoutError) a different count while a stream of
    the recorded layout still holds votes: no Job of the new layout would drain them."""
    key = layout_key(base)
    try:
        raw = await redis.get(key)
    except NoPermissionError:
        # An ACL user from before VOTE_SHARDS (no GET on the key): one shard works as always;
        # more need the key (helm/files/redis-users.acl grants it).
        if topology.shards > 1:
            raise
        logger.warning("cannot read the layout key; not guarding VOTE_SHARDS", extra={"key": key})
        return
    recorded = int(raw) if raw is not None else 1
    if recorded != topology.shards:
        old = RedisTopology(mode=topology.mode, shards=recorded).streams(base)
        waiting = {names.stream: await _undrained_if_allowed(redis, names) for names in old}
        left = {stream: count for stream, count in waiting.items() if count}
        if left:
            raise LayoutError(
                f"VOTE_SHARDS={topology.shards}, but Redis holds votes not yet recorded in the"
                f" {recorded}-shard layout ({left}); stop ingest, let the Jobs drain those"
                f" streams, then start with the new VOTE_SHARDS (docs/redis-topologies.md)"
            )
        if raw is not None:
            logger.warning(
                "stream layout changed",
                extra={"from_shards": recorded, "to_shards": topology.shards},
            )
    if raw is None or recorded != topology.shards:
        await redis.set(key, topology.shards)
