"""A steady load of votes on an in-process ingest app, keeping every 202's entry ID."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx


@dataclass
class VoteLoad:
    """`clients` concurrent voters posting until stopped; `accepted` holds each 202's ID."""

    client: httpx.AsyncClient
    clients: int = 32
    accepted: list[str] = field(default_factory=list)
    refused: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _vote(self, n: int) -> None:
        while not self._stop.is_set():
            response = await self.client.post(
                "/vote", json={"option": "cats", "voter_id": f"load-{n}"}
            )
            if response.status_code == 202:
                self.accepted.append(response.json()["id"])
                async with self._progress:
                    self._progress.notify_all()
            else:
                self.refused += 1
                await asyncio.sleep(0.005)

    async def until_accepted(self, count: int) -> None:
        """Until `count` more votes than now were answered 202 (bounded: 20 s)."""
        target = len(self.accepted) + count
        async with asyncio.timeout(20), self._progress:
            await self._progress.wait_for(lambda: len(self.accepted) >= target)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[VoteLoad]:
        """Load while inside; on exit every request in flight gets its answer."""
        self._stop.clear()
        tasks = [asyncio.create_task(self._vote(n)) for n in range(self.clients)]
        try:
            yield self
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)
