"""The bounds on PostgreSQL waits: session settings, per-transaction timeouts, the budget."""

from __future__ import annotations

import time

import pytest

from processor.budget import RuntimeBudget
from processor.pgsession import (
    CLIENT_MARGIN_S,
    IDLE_IN_TRANSACTION_S,
    KEEPALIVE_IDLE_S,
    TRANSACTION_TIMEOUT_S,
    BudgetExhaustedError,
    bounded_transaction,
    connect,
    wait_allowed_s,
)


async def test_our_sessions_end_idle_transactions_and_probe_the_connection(
    database_url: str,
) -> None:
    conn = await connect(database_url, RuntimeBudget.starting_now(60, 5))
    try:
        idle = await conn.fetchval("SHOW idle_in_transaction_session_timeout")
        keepalive = await conn.fetchval("SHOW tcp_keepalives_idle")
        assert (idle, keepalive) == (f"{IDLE_IN_TRANSACTION_S}s", str(KEEPALIVE_IDLE_S))
        async with bounded_transaction(conn, RuntimeBudget.starting_now(3, 2)):
            lock_ms = await conn.fetchval("SELECT current_setting('lock_timeout')::interval")
            statement = await conn.fetchval("SHOW statement_timeout")
        assert 0 < lock_ms.total_seconds() <= 3 + 2 - 1 - CLIENT_MARGIN_S
        assert statement != "0"
        assert await conn.fetchval("SHOW lock_timeout") == "0"  # SET LOCAL: this transaction's
    finally:
        await conn.close()


def test_waits_are_capped_and_refused_once_the_budget_is_spent() -> None:
    assert wait_allowed_s(RuntimeBudget.starting_now(600, 10), 30) == TRANSACTION_TIMEOUT_S
    spent = RuntimeBudget(time.monotonic() - 10, time.monotonic() + 1, grace_s=10)
    with pytest.raises(BudgetExhaustedError):
        wait_allowed_s(spent, TRANSACTION_TIMEOUT_S)


def test_sigterm_brings_the_end_forward_never_back() -> None:
    budget = RuntimeBudget.starting_now(600, 10)
    budget.stop_soon()
    assert budget.finish_by <= time.monotonic() + 10
    soon = RuntimeBudget(time.monotonic(), time.monotonic() + 2, grace_s=10)
    before = soon.finish_by
    soon.stop_soon()
    assert soon.finish_by == before
    assert soon.work_until == soon.finish_by - 1.0  # the time kept for closing
