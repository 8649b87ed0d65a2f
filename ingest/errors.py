"""JSON error responses, for refused votes and for Starlette's own 404 and 405."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ingest.votes import VoteError


def error_response(error: VoteError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def unavailable(reason: str, detail: str, retry_after_s: int) -> VoteError:
    return VoteError(503, reason, detail, headers={"Retry-After": str(retry_after_s)})


_REASONS = {404: "not_found", 405: "method_not_allowed"}


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors, as JSON like every other error of the API."""
    assert isinstance(exc, HTTPException)
    reason = _REASONS.get(exc.status_code, "http_error")
    body: dict[str, Any] = {"error": reason, "detail": exc.detail}
    if exc.status_code == 405:
        body["allowed_methods"] = (exc.headers or {}).get("Allow", "")
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None and request.url.path == "/vote":
            metrics.reject(reason)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
