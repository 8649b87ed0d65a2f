"""Backoff: delays double up to the cap, each retry is logged with what failed and why, and
the budget ends the retries exactly at its deadline (unit tests on a manual clock)."""

from __future__ import annotations

import logging

import pytest

from processor import retry
from processor.retry import Backoff, GiveUpError
from tests.support.clock import ManualClock


class Flaky:
    """Fails `failures` times with ConnectionError, then returns "done"."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"attempt {self.calls}")
        return "done"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """A manual clock that asyncio.sleep (as retry.py sees it) advances."""
    manual = ManualClock()

    async def sleep(seconds: float) -> None:
        manual.advance(seconds)

    monkeypatch.setattr(retry.asyncio, "sleep", sleep)
    return manual


async def test_delays_double_up_to_the_cap_and_each_retry_says_what_and_why(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    backoff = Backoff(0.1, 0.4, clock() + 100, clock=clock)
    with caplog.at_level(logging.WARNING, logger="processor.retry"):
        assert await backoff.run("ack", Flaky(5), (ConnectionError,)) == "done"
    retries = [record for record in caplog.records if record.message == "retrying"]
    assert [record.__dict__["delay_s"] for record in retries] == [0.1, 0.2, 0.4, 0.4, 0.4]
    assert {record.__dict__["what"] for record in retries} == {"ack"}
    assert retries[0].__dict__["error"] == repr(ConnectionError("attempt 1"))


async def test_a_retry_that_ends_exactly_at_the_deadline_is_still_made(clock: ManualClock) -> None:
    backoff = Backoff(0.5, 0.5, clock() + 1.0, clock=clock)
    action = Flaky(2)  # sleeps end at the deadline - 0.5 and at the deadline itself
    assert await backoff.run("read", action, (ConnectionError,)) == "done"
    assert action.calls == 3


async def test_past_the_deadline_it_gives_up_naming_what_failed(clock: ManualClock) -> None:
    backoff = Backoff(0.5, 0.5, clock() + 1.0, clock=clock)
    action = Flaky(3)
    with pytest.raises(GiveUpError, match=r"^read: still failing at the end of the budget$"):
        await backoff.run("read", action, (ConnectionError,))
    assert action.calls == 3


async def test_other_errors_are_not_retried(clock: ManualClock) -> None:
    backoff = Backoff(0.1, 0.4, clock() + 100, clock=clock)
    with pytest.raises(ConnectionError):
        await backoff.run("ack", Flaky(1), (TimeoutError,))
