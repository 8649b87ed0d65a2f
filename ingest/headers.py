"""Security headers on every HTTP response (the page, static files and the JSON API alike).

The page's script and styles are files under /static (no inline script or style), so the
Content-Security-Policy allows only this origin and forbids framing, plugins and <base>.
POST /vote bypasses the middleware (ingest/app.py) and adds `security_headers(scope)` itself.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
# Only over HTTPS (browsers ignore it otherwise); a year, the usual preload minimum.
HSTS = (b"strict-transport-security", b"max-age=31536000")
_OVER_HTTPS = (*SECURITY_HEADERS, HSTS)


def security_headers(scope: Scope) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response to `scope` carries (built once, not per request)."""
    return _OVER_HTTPS if scope.get("scheme") == "https" else SECURITY_HEADERS


def adding_security_headers(scope: Scope, send: Send) -> Send:
    """`send`, adding the security headers to the response start."""
    extra = security_headers(scope)

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return send_with_headers


class SecurityHeaders:
    """ASGI middleware adding the security headers (and HSTS over HTTPS) to each response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, adding_security_headers(scope, send))
