"""Removal of consumers that hold nothing: this Job's own at exit and long-idle ones."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from votecontract.names import StreamNames

# Checked and deleted in one script: XGROUP DELCONSUMER discards the consumer's pending
# entries, so a consumer that gained one between a check and the delete would lose votes.
_CLEANUP_SCRIPT = """
local removed = {}
for _, raw in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local consumer = {}
    for i = 1, #raw, 2 do consumer[raw[i]] = raw[i + 1] end
    local mine = consumer['name'] == ARGV[2]
    if consumer['pending'] == 0 and (mine or consumer['idle'] > tonumber(ARGV[3])) then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], consumer['name'])
        table.insert(removed, consumer['name'])
    end
end
return removed
"""


class ConsumerJanitor:
    """Deletes consumers with an empty pending list: `own`, and others idle too long."""

    def __init__(self, redis: aioredis.Redis | aioredis.RedisCluster, names: StreamNames) -> None:
        self._script = redis.register_script(_CLEANUP_SCRIPT)
        self._names = names

    async def clean(self, own: str, stale_idle_ms: int) -> list[str]:
        """Return the names of the consumers deleted."""
        reply: Any = await self._script(
            keys=[self._names.stream], args=[self._names.group, own, stale_idle_ms]
        )
        return [name.decode() if isinstance(name, bytes) else str(name) for name in reply]
