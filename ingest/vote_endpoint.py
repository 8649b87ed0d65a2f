"""POST /vote: validate, append to the stream, answer 202 once Redis confirmed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ingest.errors import error_response, unavailable
from ingest.names import FIELD_ACCEPTED_MS, FIELD_OPTION, FIELD_VOTER_ID
from ingest.votes import (
    VOTER_COOKIE,
    VoteError,
    check_content_length,
    check_media_type,
    is_voter_id,
    new_voter_id,
    parse_ballot,
    read_limited,
)
from ingest.writer import WriteError

if TYPE_CHECKING:
    from ingest.state import AppState

VOTER_COOKIE_MAX_AGE_S = 365 * 24 * 3600


async def post_vote(request: Request) -> Response:
    """Accept one vote; 202 with the stream entry ID, or a JSON error."""
    state: AppState = request.app.state.ingest
    started = time.perf_counter()
    try:
        response = await _accept(request, state)
    except VoteError as error:
        state.metrics.reject(error.reason)
        response = error_response(error)
    state.metrics.latency.observe(time.perf_counter() - started)
    return response


async def _accept(request: Request, state: AppState) -> Response:
    settings = state.settings
    headers = request.headers
    kind = check_media_type(headers.get("content-type"))
    check_content_length(headers.get("content-length"), settings.max_body_bytes)
    try:
        body = await read_limited(request.stream(), settings.max_body_bytes)
    except ClientDisconnect:
        raise VoteError(400, "client_disconnected", "the body was cut short") from None
    ballot = parse_ballot(kind, body, settings.options)
    if state.backlog.over_limit:
        raise unavailable(
            "backlog_full", "too many votes are waiting to be processed", settings.retry_after_s
        )
    voter_id, new_cookie = ballot.voter_id, False
    if voter_id is None:
        # A malformed cookie is replaced rather than refused: the browser cannot fix it.
        voter_id = request.cookies.get(VOTER_COOKIE)
        if not is_voter_id(voter_id):
            voter_id, new_cookie = new_voter_id(), True
    fields = (FIELD_OPTION, ballot.option, FIELD_VOTER_ID, voter_id)
    try:
        entry_id = await state.writer.xadd(
            (*fields, FIELD_ACCEPTED_MS, str(time.time_ns() // 1_000_000))
        )
    except WriteError as exc:
        raise unavailable("redis_unavailable", str(exc), settings.retry_after_s) from None
    state.metrics.accepted.inc()
    return _accepted(request, entry_id, voter_id if new_cookie else None)


def _accepted(request: Request, entry_id: str, new_voter: str | None) -> Response:
    status_url = f"/votes/{entry_id}"
    response = JSONResponse(
        {"id": entry_id, "status_url": status_url},
        status_code=202,
        headers={"Location": status_url},
    )
    if new_voter is not None:
        response.set_cookie(
            VOTER_COOKIE,
            new_voter,
            max_age=VOTER_COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


routes = [Route("/vote", post_vote, methods=["POST"])]
