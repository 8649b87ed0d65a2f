"""`GET /`: the voting page, rendered complete on the server so it works without JavaScript.

`static/vote.js` (no inline script, so a strict Content-Security-Policy fits) then enhances
it: votes via fetch, the voter's vote followed to "recorded", bars fed by the results stream.
The voter's latest vote is found through the `last_vote` cookie, which the no-JavaScript
form path (303 from `POST /vote`) and the script both set.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ingest.cookies import COOKIE_LAST_VOTE
from ingest.readside.database import DatabaseUnavailableError
from ingest.readside.results import Results, ResultsService, build_results
from ingest.readside.status import InvalidVoteIdError, VoteStatus, VoteStatusService

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


def percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def describe_vote(vote: VoteStatus | None) -> str:
    """The sentence the page shows about the voter's latest vote (vote.js says the same)."""
    if vote is None:
        return "You have not voted yet."
    option = f" for {vote.option}" if vote.option else ""
    if vote.state == "pending":
        return f"Your vote{option} is pending: accepted, waiting to be counted."
    if vote.state == "recorded" and vote.ballot == "superseded":
        return f"Your vote{option} was recorded, then replaced by a later vote."
    if vote.state == "recorded":
        return f"Your vote{option} is recorded."
    return f"Your vote could not be counted: {vote.reason or 'unknown reason'}."


async def _results(service: ResultsService) -> Results | None:
    try:
        return await service.current()
    except DatabaseUnavailableError:
        return None


async def _last_vote(service: VoteStatusService, request: Request) -> VoteStatus | None:
    vote_id = request.cookies.get(COOKIE_LAST_VOTE)
    if not vote_id:
        return None
    try:
        return await service.lookup(vote_id)
    except (InvalidVoteIdError, DatabaseUnavailableError, RedisError, OSError):
        return None  # the page still works; the script retries the lookup


async def page_response(
    request: Request,
    results_service: ResultsService,
    status_service: VoteStatusService,
    options: tuple[str, ...],
) -> Response:
    """`GET /`."""
    results = await _results(results_service)
    vote = await _last_vote(status_service, request)
    context = {
        "options": options,
        "results": results or build_results(options, {}, None, datetime.now(UTC)),
        "results_available": results is not None,
        "vote": vote,
        "vote_text": describe_vote(vote),
        "vote_cookie": COOKIE_LAST_VOTE,
        "percent": percent,
    }
    return templates.TemplateResponse(
        request, "index.html", context, headers={"Cache-Control": "no-store"}
    )
