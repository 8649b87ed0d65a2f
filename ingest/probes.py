"""Liveness and readiness probes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from ingest.state import AppState


async def healthz(request: Request) -> Response:
    """The process is alive and serving (says nothing about Redis)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Redis answers and the consumer group exists (created here if it went missing)."""
    state: AppState = request.app.state.ingest
    if await state.backlog.refresh():
        return JSONResponse({"status": "ready", "backlog": state.backlog.backlog})
    return JSONResponse(
        {
            "status": "not_ready",
            "error": "not_ready",
            "detail": "redis is unreachable or the consumer group is missing",
        },
        status_code=503,
        headers={"Retry-After": str(state.settings.retry_after_s)},
    )


routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
