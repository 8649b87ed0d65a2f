"""Running the ingest app in-process for tests: lifespan entered, httpx client on ASGI."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import httpx
from starlette.applications import Starlette

from ingest.app import create_app
from ingest.settings import IngestSettings
from ingest.state import AppState
from votecontract.names import StreamNames

# Nothing listens on port 1: an app a test builds without a database of the test's own gets
# "connection refused" from the read side and the pipeline metrics, never a developer's data.
NO_DATABASE_URL = "postgresql://postgres@127.0.0.1:1/none"


def make_settings(redis_url: str, names: StreamNames, **overrides: object) -> IngestSettings:
    """Settings of an in-process app. The Redis timeout is long: on a loaded machine a round
    trip can take longer than a production timeout; tests of the timeout set their own."""
    base = IngestSettings(
        redis_url=redis_url,
        names=names,
        redis_timeout_s=10.0,
        backlog_refresh_s=0.05,
        database_url=NO_DATABASE_URL,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_app(
    settings: IngestSettings,
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield app, client


def state_of(app: Starlette) -> AppState:
    state: AppState = app.state.ingest
    return state


async def wait_until(condition: Callable[[], bool], within_s: float = 60.0) -> None:
    """Until `condition()` (the app's state, refreshed in the background): a generous bound."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
