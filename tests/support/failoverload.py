"""Votes written by many concurrent voters through the ingest app while the sentinels fail
the master over, and what became of every acknowledged one: the figures
docs/redis-topologies.md gives."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from tests.support.redissentinel import LocalSentinel

VOTERS = 16
BEFORE, AFTER = 300, 300  # acknowledged votes to have before the failover and after it


@dataclass
class Tally:
    acknowledged: list[str] = field(default_factory=list)
    refused: int = 0
    goal: int = BEFORE
    reached: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, entry_id: str) -> None:
        self.acknowledged.append(entry_id)
        if len(self.acknowledged) >= self.goal:
            self.reached.set()

    async def until(self, goal: int) -> None:
        self.goal = goal
        self.reached.clear()
        if len(self.acknowledged) < goal:
            await self.reached.wait()


Write = Callable[[int], Awaitable[str | None]]


async def load_through(failover: Callable[[], object], write: Write) -> Tally:
    """VOTERS concurrent writers; `failover` (blocking, run in a thread) starts once BEFORE
    votes are acknowledged; the writers stop once AFTER more are acknowledged after it."""
    tally = Tally()
    done = asyncio.Event()

    async def voter(number: int) -> None:
        count = 0
        while not done.is_set():
            count += 1
            entry_id = await write(number * 1_000_000 + count)
            if entry_id is None:
                tally.refused += 1
                await asyncio.sleep(0.01)
            else:
                tally.add(entry_id)

    async with asyncio.TaskGroup() as tasks:
        for number in range(VOTERS):
            tasks.create_task(voter(number))
        await tally.until(BEFORE)
        await asyncio.to_thread(failover)
        await tally.until(len(tally.acknowledged) + AFTER)
        done.set()
    return tally


def http_writer(client: httpx.AsyncClient) -> Write:
    async def write(number: int) -> str | None:
        body = {"option": "cats", "voter_id": f"v{number}"}
        response = await client.post("/vote", json=body)
        return str(response.json()["id"]) if response.status_code == 202 else None

    return write


def stored_on_master(setup: LocalSentinel, stream: str) -> set[str]:
    with setup.connect(setup.master_port(), decode_responses=True) as master:
        return {entry_id for entry_id, _ in master.xrange(stream)}
