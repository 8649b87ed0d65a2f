"""POST /vote: validate, append to the stream, answer 202 once Redis confirmed (303 to the
voting page for a browser's plain form submission).

The endpoint is a bare ASGI app rather than a Request/Response function, called before
Starlette's middleware and router (ingest/app.py): it is the service's hot path, and skipping
Starlette's per-request objects is measurable (see loadtest/bench_ingest.py). It adds the
security headers itself. Errors still go through JSONResponse.
"""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

from starlette.requests import cookie_parser
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ingest.cookies import COOKIE_LAST_VOTE, COOKIE_MAX_AGE_S, VOTER_COOKIE
from ingest.errors import error_response, unavailable
from ingest.headers import adding_security_headers, security_headers
from ingest.votes import (
    VoteError,
    check_content_length,
    check_media_type,
    is_voter_id,
    new_voter_id,
    parse_ballot,
    read_limited,
)
from ingest.writer import WriteError
from votecontract.entry import build_entry, now_ms

if TYPE_CHECKING:
    from ingest.state import AppState

RawHeaders = list[tuple[bytes, bytes]]


class VoteEndpoint:
    """Accept one vote; 202 with the stream entry ID, or a JSON error."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: AppState = scope["app"].state.ingest
        started = time.perf_counter()
        try:
            status, headers, body = await _accept(scope, receive, state)
        except VoteError as error:
            state.metrics.reject(error.reason)
            await error_response(error)(scope, receive, adding_security_headers(scope, send))
        else:
            headers.extend(security_headers(scope))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        state.metrics.latency.observe(time.perf_counter() - started)


async def _accept(scope: Scope, receive: Receive, state: AppState) -> tuple[int, RawHeaders, bytes]:
    settings = state.settings
    content_type, content_length, cookie, accept = _request_headers(scope)
    kind = check_media_type(content_type)
    check_content_length(content_length, settings.max_body_bytes)
    body = await read_limited(receive, settings.max_body_bytes)
    ballot = parse_ballot(kind, body, settings.options)
    if state.backlog.over_limit:
        if state.backlog.layout_unchecked:  # Redis not reached yet: nothing is known to be full
            raise unavailable(
                "redis_unavailable",
                "the vote could not be stored, retry later",
                settings.retry_after_s,
            )
        raise unavailable(
            "backlog_full", "too many votes are waiting to be processed", settings.retry_after_s
        )
    if not state.durability.verified:
        raise unavailable(
            "durability_unverified",
            "Redis is not known to store votes as durably as configured, retry later",
            settings.retry_after_s,
        )
    voter_id, new_cookie = ballot.voter_id, False
    if voter_id is None:
        # A malformed cookie is replaced rather than refused: the browser cannot fix it.
        voter_id = cookie_parser(cookie).get(VOTER_COOKIE) if cookie else None
        if not is_voter_id(voter_id):
            voter_id, new_cookie = new_voter_id(), True
    secure = scope.get("scheme") == "https"
    try:
        writer = state.writer.for_voter(voter_id)
        entry_id = await writer.xadd(build_entry(ballot.option, voter_id, now_ms()))
    except WriteError as failed:
        # The cause is logged by the writer; clients learn only that they may retry. Redis may
        # have applied the write all the same (its reply came too late, or too few replicas
        # confirmed it): a new voter keeps the identity given to it, so the retry replaces
        # that vote instead of adding one.
        error = unavailable(
            failed.reason, "the vote could not be stored, retry later", settings.retry_after_s
        )
        if new_cookie:
            error.headers["Set-Cookie"] = _voter_cookie(voter_id, secure).decode("latin-1")
        raise error from None
    state.stream_ids.check(entry_id, settings.retry_after_s)
    state.metrics.accepted.inc()
    headers, body = _accepted(entry_id, voter_id if new_cookie else None, secure)
    if accept is not None and "text/html" in accept:
        return 303, _see_page(scope, headers, entry_id, secure), b""
    return 202, headers, body


def _request_headers(scope: Scope) -> tuple[str | None, str | None, str | None, str | None]:
    """Content-Type, Content-Length, Cookie and Accept, in one pass over the raw headers."""
    content_type = content_length = cookie = accept = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"content-length":
            content_length = value.decode("latin-1")
        elif name == b"cookie":
            cookie = value.decode("latin-1")
        elif name == b"accept":
            accept = value.decode("latin-1")
    return content_type, content_length, cookie, accept


def _see_page(scope: Scope, accepted: RawHeaders, entry_id: str, secure: bool) -> RawHeaders:
    """A browser's plain form POST (no JavaScript) is sent back to the page with 303, which
    shows the vote named by the `last_vote` cookie; API clients keep getting 202 JSON."""
    page = (scope.get("root_path", "") + "/").encode("latin-1")
    headers = [(b"location", page), (b"content-length", b"0")]
    headers += [header for header in accepted if header[0] == b"set-cookie"]
    cookie: SimpleCookie = SimpleCookie()
    cookie[COOKIE_LAST_VOTE] = entry_id
    morsel = cookie[COOKIE_LAST_VOTE]
    morsel["max-age"] = COOKIE_MAX_AGE_S
    morsel["path"] = "/"
    morsel["samesite"] = "lax"
    if secure:
        morsel["secure"] = True
    headers.append((b"set-cookie", morsel.OutputString().encode("latin-1")))
    return headers


def _accepted(entry_id: str, new_voter: str | None, secure: bool) -> tuple[RawHeaders, bytes]:
    # An entry ID is `<digits>-<digits>`: nothing in it needs JSON escaping.
    status_url = f"/votes/{entry_id}".encode()
    body = b'{"id":"%s","status_url":"%s"}' % (entry_id.encode(), status_url)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"location", status_url),
    ]
    if new_voter is not None:
        headers.append((b"set-cookie", _voter_cookie(new_voter, secure)))
    return headers, body


def _voter_cookie(voter_id: str, secure: bool) -> bytes:
    cookie: SimpleCookie = SimpleCookie()
    cookie[VOTER_COOKIE] = voter_id
    morsel = cookie[VOTER_COOKIE]
    morsel["max-age"] = COOKIE_MAX_AGE_S
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "lax"
    if secure:
        morsel["secure"] = True
    return morsel.OutputString().encode("latin-1")


endpoint = VoteEndpoint()
# The route answers the other methods (405); POST is dispatched to `endpoint` by ingest/app.py.
routes = [Route("/vote", endpoint, methods=["POST"])]
