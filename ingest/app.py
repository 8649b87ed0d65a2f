"""The ASGI application factory: `uvicorn --factory ingest.app:create_app`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

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


def create_app(settings: IngestSettings | None = None) -> Starlette:
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
    app = Starlette(
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
