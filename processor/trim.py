"""Trim the stream below what every consumer group has processed, atomically in Redis.

`XTRIM <stream> MINID <p>` removes the entries with IDs < p. Per group, every entry below
both its oldest pending entry and the successor of its last-delivered ID was delivered and
acked, so p is the smallest of those points over all groups of the stream. Computing p and
trimming in one script leaves no window for a delivery or claim in between. Never XDEL: it
makes the lag KEDA scales on NULL; and never trim undelivered entries: on Redis 7.x that
inflates lag for good.

A Job trims after each batch it settles and once more at the end of every run, so entries
another group acked are removed by the next Job even when it finds nothing to read.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

# Stream IDs are compared as strings of digits (shorter is smaller), exact for any u64 part.
_TRIM_SCRIPT = """
local function parts(id)
    local dash = string.find(id, '-', 1, true)
    return string.sub(id, 1, dash - 1), string.sub(id, dash + 1)
end
local function number_less(a, b)
    if #a ~= #b then return #a < #b end
    return a < b
end
local function id_less(a, b)
    local a_ms, a_seq = parts(a)
    local b_ms, b_seq = parts(b)
    if a_ms ~= b_ms then return number_less(a_ms, b_ms) end
    return number_less(a_seq, b_seq)
end
local function successor(id)
    local ms, seq = parts(id)
    if #seq < 16 then return ms .. '-' .. string.format('%.0f', tonumber(seq) + 1) end
    return id  -- keep one delivered entry rather than do 64-bit arithmetic in Lua
end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local floor = nil
for _, raw in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local group = {}
    for i = 1, #raw, 2 do group[raw[i]] = raw[i + 1] end
    local point = successor(group['last-delivered-id'])
    if group['pending'] > 0 then
        local oldest = redis.call('XPENDING', KEYS[1], group['name'])[2]
        if id_less(oldest, point) then point = oldest end
    end
    if floor == nil or id_less(point, floor) then floor = point end
end
if floor == nil then return false end
return {floor, redis.call('XTRIM', KEYS[1], 'MINID', floor)}
"""


class StreamTrimmer:
    """Removes entries every group of the stream has acknowledged."""

    def __init__(self, redis: aioredis.Redis | aioredis.RedisCluster, stream: str) -> None:
        self._script = redis.register_script(_TRIM_SCRIPT)
        self._stream = stream

    async def trim(self) -> int:
        """Trim once; return how many entries were removed."""
        reply: Any = await self._script(keys=[self._stream])
        return int(reply[1]) if reply else 0
