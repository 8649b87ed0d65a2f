"""A Job's time: it reads until MAX_RUNTIME_S and has exited by MAX_RUNTIME_S + SHUTDOWN_GRACE_S.

After `read_until` no batch is read and no retry is started; the batches already read may
still be written and acked until `work_until`, when whatever the Job waits on (PostgreSQL,
Redis) is cancelled; the last `close_reserve_s` before `finish_by` close the connections.
SIGTERM moves `finish_by` to at most SHUTDOWN_GRACE_S from then. All on time.monotonic().
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# Closing: a polite goodbye to PostgreSQL and the consumer cleanup script in Redis; a loopback
# round trip each. Capped at half the grace so that most of it is left for the batches.
CLOSE_RESERVE_S = 1.0


@dataclass
class RuntimeBudget:
    read_until: float
    finish_by: float
    grace_s: float

    @classmethod
    def starting_now(cls, runtime_s: float, grace_s: float) -> RuntimeBudget:
        now = time.monotonic()
        return cls(now + runtime_s, now + runtime_s + grace_s, grace_s)

    def stop_soon(self) -> None:
        """SIGTERM: finish within the grace from now (never later than already due)."""
        self.finish_by = min(self.finish_by, time.monotonic() + self.grace_s)

    @property
    def close_reserve_s(self) -> float:
        return min(CLOSE_RESERVE_S, self.grace_s / 2)

    @property
    def work_until(self) -> float:
        return self.finish_by - self.close_reserve_s

    def work_left_s(self) -> float:
        """Seconds left until `work_until` (negative once past it)."""
        return self.work_until - time.monotonic()
