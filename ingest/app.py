"""The ASGI application factory: `uvicorn --factory ingest.app:create_app`.

`POST /vote` is dispatched before Starlette's middleware stack and router: on a 2-core
machine they cost about a fifth of the service's CPU per vote (loadtest/bench_ingest.py,
docs/benchmarks.md). The vote endpoint adds the security headers itself; an exception it
does not handle still becomes uvicorn's 500, as ServerErrorMiddleware's would. Every other
method and path goes through the whole stack.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest import probes, vote_endpoint
from ingest.errors import http_exception_handler
from ingest.headers import SecurityHeaders
from ingest.metrics import IngestMetrics, metrics_endpoint
from ingest.openapi import build_spec, openapi_endpoint
from ingest.pipelinemetrics.monitor import pipeline_monitor
from ingest.readside.openapi import read_paths
from ingest.readside.routes import ReadSide
from ingest.settings import IngestSettings
from ingest.state import open_state


class IngestApp(Starlette):
    """Starlette, with `POST /vote` handed straight to `vote_app`."""

    def __init__(self, vote_app: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vote_app = vote_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and _route_path(scope) == "/vote":
            scope["app"] = self
            await self.vote_app(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path the router would match (without the root path, when one is set)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


def create_app(settings: IngestSettings | None = None) -> IngestApp:
    """The ingest app; settings from the environment when not given."""
    settings = IngestSettings.from_env() if settings is None else settings
    metrics = IngestMetrics()
    read_side = ReadSide(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_state(settings, metrics) as state, read_side.running():
            app.state.ingest = state
            monitor = pipeline_monitor(settings, state.redis, read_side.database)
            metrics.pipeline.monitor = monitor
            try:
                yield
            finally:
                metrics.pipeline.monitor = None
                await monitor.aclose()

    routes: list[BaseRoute] = [
        *vote_endpoint.routes,
        *probes.routes,
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"], include_in_schema=False),
        *read_side.routes(),
    ]
    app = IngestApp(
        vote_endpoint.endpoint,
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception_handler},
        middleware=[Middleware(SecurityHeaders)],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.read_side = read_side
    app.state.openapi = build_spec(settings, read_paths())
    return app
