"""The metric of KEDA's `redis-streams` trigger in lag mode, read the way KEDA reads it.

KEDA v2.20.2 (`pkg/scalers/redis_streams_scaler.go`) asks `XINFO GROUPS <stream>` and takes
the group's `lag`: entries not yet delivered to any consumer of the group. Its fallbacks:
- stream missing: 0 (nothing to do);
- group missing: `XLEN` (every entry is still to be delivered);
- `lag` NULL (after an XDEL at or beyond the group's position, or a mid-stream SETID): -1,
  which keeps the trigger inactive without any log line. The runner reports it; see
  `LagReading.lag_unknown`.
The trigger is active when `metric > activationLagCount`.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from processor.scaledjob.manifest import LagTrigger
from processor.scaledjob.scaling import TriggerMetric

LAG_UNKNOWN = -1


@dataclass(frozen=True, slots=True)
class LagReading:
    metric: int
    source: str  # "lag", "xlen" (group missing), "no-stream", "lag-null"

    @property
    def lag_unknown(self) -> bool:
        return self.source == "lag-null"


def is_missing_key(error: ResponseError) -> bool:
    return "no such key" in str(error).lower()


async def read_lag(
    client: aioredis.Redis | aioredis.RedisCluster, stream: str, group: str
) -> LagReading:
    """The trigger's metric for `group` on `stream`, with KEDA's fallbacks."""
    try:
        groups = await client.xinfo_groups(stream)
    except ResponseError as error:
        if is_missing_key(error):
            return LagReading(0, "no-stream")
        raise
    for info in groups:
        if _text(info.get("name")) == group:
            lag = info.get("lag")
            if lag is None:
                return LagReading(LAG_UNKNOWN, "lag-null")
            return LagReading(int(lag), "lag")
    return LagReading(int(await client.xlen(stream)), "xlen")


def is_active(metric: int, activation_lag_count: int) -> bool:
    return metric > activation_lag_count


def trigger_metric(trigger: LagTrigger, reading: LagReading) -> TriggerMetric:
    return TriggerMetric(
        value=float(reading.metric),
        target=float(trigger.lag_count),
        active=is_active(reading.metric, trigger.activation_lag_count),
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
