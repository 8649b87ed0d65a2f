"""Waiting for a state outside the test's control (a server's, a process's): poll it, with a
bound generous enough that only a real failure reaches it, never the machine's load."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

GENEROUS_S = 60.0


async def eventually(
    check: Callable[[], Awaitable[bool]],
    what: str,
    within_s: float = GENEROUS_S,
    every_s: float = 0.02,
) -> None:
    """Until `await check()` is true; AssertionError naming `what` after `within_s`."""
    try:
        async with asyncio.timeout(within_s):
            while not await check():  # noqa: ASYNC110 (a server's state: nothing to await)
                await asyncio.sleep(every_s)
    except TimeoutError:
        raise AssertionError(f"not within {within_s} s: {what}") from None
