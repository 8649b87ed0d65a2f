"""When a vote counts as stored: the level ingest waits for before it answers 202.

- `memory`: Redis applied the XADD. With the AOF on, a redis-server process crash loses
  nothing acknowledged (Redis writes the AOF before it replies); a node crash loses what the
  kernel had not written to disk yet (up to about a second under `appendfsync everysec`).
- `fsync`: Redis fsyncs the AOF before it sends a reply. That holds exactly when the server
  runs `appendonly yes`, `appendfsync always` and `no-appendfsync-on-rewrite no`: Redis 7
  writes and fdatasyncs the AOF in `beforeSleep`, before the replies of the event-loop turn
  go out (one fsync per turn, so the writer's coalesced batches make it a group commit), and
  `no-appendfsync-on-rewrite yes` skips that fsync while a child rewrites. Ingest reads the
  three with CONFIG GET at start-up (a wrong value stops it) and on every backlog refresh
  (votes get 503 while they are wrong or unknown).
- `replica`: a WAIT after each batch (writer.py) for ACK_REPLICAS replicas.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from redis.exceptions import NoPermissionError, RedisError

from ingest.redisclients import AnyRedis
from votecontract.names import ENV_ACK_DURABILITY

logger = logging.getLogger(__name__)


class Durability(StrEnum):
    MEMORY = "memory"
    FSYNC = "fsync"
    REPLICA = "replica"


FSYNC_CONFIG = {"appendonly": "yes", "appendfsync": "always", "no-appendfsync-on-rewrite": "no"}


class DurabilityError(Exception):
    """Redis is not configured for the ACK_DURABILITY level: ingest must not start."""


async def fsync_problem(redis: AnyRedis) -> str | None:
    """Why Redis may reply before the AOF is fsynced, or None if it never does.

    Redis being unreachable is not an answer: its errors propagate.
    """
    try:
        config = await redis.config_get(*FSYNC_CONFIG)
    except NoPermissionError:
        return await _problem_without_config_get(redis)
    wrong = [
        f"{name} is {config.get(name)!r}, needs {wanted!r}"
        for name, wanted in FSYNC_CONFIG.items()
        if config.get(name) != wanted
    ]
    return "; ".join(wrong) or None


async def _problem_without_config_get(redis: AnyRedis) -> str:
    # INFO persistence tells whether the AOF is on (aof_enabled), never its fsync policy.
    grant = "grant this Redis user +config|get"
    try:
        info = await redis.info("persistence")
    except NoPermissionError:
        return f"this Redis user may run neither CONFIG GET nor INFO ({grant})"
    if not int(info.get("aof_enabled", 0)):
        return "the AOF is off (INFO persistence: aof_enabled:0)"
    return (
        "this Redis user may not run CONFIG GET and INFO shows only that the AOF is on, "
        f"not appendfsync ({grant})"
    )


def describe(problem: str) -> str:
    level = f"{ENV_ACK_DURABILITY}={Durability.FSYNC}"
    return f"{level} needs a Redis that fsyncs before it replies: {problem}"


class FsyncGuard:
    """Whether Redis is known to fsync every write before replying; always true below the
    `fsync` level. Votes are refused while it is false."""

    def __init__(self, redis: AnyRedis, level: Durability) -> None:
        self._redis = redis
        self._required = level is Durability.FSYNC
        self.verified = not self._required
        self.problem: str | None = None

    async def check_at_start(self) -> None:
        """Raise DurabilityError if Redis is misconfigured; unreachable is no error (the
        check runs again with every refresh, and votes wait for it)."""
        try:
            await self.refresh()
        except (RedisError, OSError) as exc:
            logger.warning(
                "redis durability not verified yet", extra={"error": str(exc) or repr(exc)}
            )
            return
        if self.problem is not None:
            raise DurabilityError(describe(self.problem))

    async def refresh(self) -> None:
        """Check again. Redis errors propagate and leave `verified` as it was: a check that
        timed out under load says nothing about the configuration (a Redis restarted with
        another one is caught by the first check that gets through, BACKLOG_REFRESH_S later)."""
        if not self._required:
            return
        problem = await fsync_problem(self._redis)
        if problem != self.problem and problem is not None:
            logger.error("votes refused: %s", describe(problem))
        elif problem != self.problem:
            logger.info("redis fsyncs every write before replying (appendfsync always)")
        self.problem = problem
        self.verified = problem is None
