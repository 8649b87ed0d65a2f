"""No wait on PostgreSQL outlasts what is left of the Job's runtime budget.

- Connecting is bounded by CONNECT_TIMEOUT_S and the budget.
- Every transaction starts with `SET LOCAL lock_timeout` and `statement_timeout`: what is
  left of the budget, at most TRANSACTION_TIMEOUT_S. A session idle in a transaction that holds
  the tally or ballot row locks (a crashed client, a half-open connection) then costs a Job
  a LockNotAvailableError, a transient error retried with backoff, not its whole life. The
  client side waits CLIENT_MARGIN_S longer, for a server that cannot answer at all.
- Our own sessions end a transaction left idle for IDLE_IN_TRANSACTION_S
  (`idle_in_transaction_session_timeout`: a Job frozen mid-transaction, which TCP still
  answers for) and have the server probe the connection (`tcp_keepalives_*`: a Job whose node
  died is noticed after about KEEPALIVE_IDLE_S + KEEPALIVE_INTERVAL_S * KEEPALIVE_COUNT), so
  they never hold row locks long for other Jobs. These are session settings sent at start-up;
  a pooler in front of PostgreSQL must pass them on (PgBouncer: not in
  `ignore_startup_parameters`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from processor.budget import RuntimeBudget

CONNECT_TIMEOUT_S = 10.0
# A Job writes and acks a batch of 10,000 votes in 0.5-1.0 s here (six batches, a loaded
# 2-core machine); a transaction still waiting after 30 s waits on something that will not
# move by itself (a stuck session, a half-open connection), which a new attempt on a new
# connection may not meet.
TRANSACTION_TIMEOUT_S = 30.0
CLIENT_MARGIN_S = 1.0
# Our statements follow each other within milliseconds inside a transaction.
IDLE_IN_TRANSACTION_S = 15
KEEPALIVE_IDLE_S = 10
KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3
SESSION_SETTINGS = {
    "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_S * 1000),
    "tcp_keepalives_idle": str(KEEPALIVE_IDLE_S),
    "tcp_keepalives_interval": str(KEEPALIVE_INTERVAL_S),
    "tcp_keepalives_count": str(KEEPALIVE_COUNT),
}


class BudgetExhaustedError(TimeoutError):
    """No time is left in the Job's budget to start waiting on PostgreSQL."""


def wait_allowed_s(budget: RuntimeBudget, cap_s: float) -> float:
    """How long the next wait may take: what is left of the budget, at most `cap_s`."""
    left = budget.work_left_s() - CLIENT_MARGIN_S
    if left <= 0:
        raise BudgetExhaustedError("the Job's runtime budget is spent")
    return min(left, cap_s)


async def connect(database_url: str, budget: RuntimeBudget) -> asyncpg.Connection:
    """A connection with the session settings above, within the connect timeout."""
    conn: asyncpg.Connection = await asyncpg.connect(
        database_url,
        timeout=wait_allowed_s(budget, CONNECT_TIMEOUT_S),
        server_settings=SESSION_SETTINGS,
    )
    return conn


@asynccontextmanager
async def bounded_transaction(
    conn: asyncpg.Connection, budget: RuntimeBudget
) -> AsyncIterator[None]:
    """A transaction whose every wait, on the server and here, ends within the budget."""
    wait_s = wait_allowed_s(budget, TRANSACTION_TIMEOUT_S)
    ms = max(1, int(wait_s * 1000))
    async with asyncio.timeout(wait_s + CLIENT_MARGIN_S), conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}")
        yield
