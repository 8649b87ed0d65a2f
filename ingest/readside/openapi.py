"""OpenAPI 3.1 paths of the read side, for `/openapi.json` (`build_spec(settings, paths)`)."""

from __future__ import annotations

from typing import Any

from ingest.cookies import COOKIE_LAST_VOTE

Spec = dict[str, Any]

JSON = "application/json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
TIME = {"type": "string", "format": "date-time"}

RESULTS_SCHEMA: Spec = {
    "type": "object",
    "required": ["options", "total", "backlog", "as_of"],
    "properties": {
        "options": {
            "type": "array",
            "description": "Configured options first (zeros included), then any other "
            "option still holding votes.",
            "items": {
                "type": "object",
                "required": ["option", "votes", "share"],
                "properties": {
                    "option": {"type": "string"},
                    "votes": {"type": "integer", "minimum": 0},
                    "share": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
        },
        "total": {"type": "integer", "minimum": 0},
        "backlog": {
            "type": ["integer", "null"],
            "description": "Votes accepted but not yet recorded (null: Redis unreachable).",
        },
        "as_of": {**TIME, "description": "When these figures were read (at most 1 s ago)."},
    },
}

VOTE_STATUS_SCHEMA: Spec = {
    "type": "object",
    "required": ["id", "state"],
    "properties": {
        "id": {"type": "string"},
        "state": {"enum": ["pending", "recorded", "dead_lettered"]},
        "option": {"type": "string"},
        "accepted_at": TIME,
        "recorded_at": {**TIME, "description": "recorded only"},
        "ballot": {
            "enum": ["current", "superseded"],
            "description": "recorded only: still the voter's ballot, or replaced by a later vote",
        },
        "reason": {"type": "string", "description": "dead_lettered only"},
        "dead_at": {**TIME, "description": "dead_lettered only"},
    },
}


def _error(description: str, headers: Spec | None = None) -> Spec:
    response: Spec = {"description": description, "content": {JSON: {"schema": ERROR_REF}}}
    if headers:
        response["headers"] = headers
    return response


def _ok(description: str, media_type: str, schema: Spec) -> Spec:
    return {"description": description, "content": {media_type: {"schema": schema}}}


def read_paths() -> Spec:
    unavailable = _error("Postgres unavailable", RETRY_AFTER)
    return {
        "/results": {
            "get": {
                "summary": "Votes and share per option, total and backlog (cached <= 1 s)",
                "responses": {
                    "200": _ok("current results", JSON, RESULTS_SCHEMA),
                    "503": unavailable,
                },
            }
        },
        "/results/stream": {
            "get": {
                "summary": "Server-Sent Events: `event: results` (the GET /results body) on "
                "every change, a `: ping` comment as heartbeat",
                "responses": {"200": _ok("event stream", "text/event-stream", {"type": "string"})},
            }
        },
        "/votes/{vote_id}": {
            "get": {
                "summary": "State of an accepted vote: pending, recorded or dead-lettered",
                "parameters": [
                    {
                        "name": "vote_id",
                        "in": "path",
                        "required": True,
                        "description": "the `id` POST /vote answered",
                        "schema": {"type": "string", "pattern": "^[0-9]{1,20}-[0-9]{1,20}$"},
                    }
                ],
                "responses": {
                    "200": _ok("the vote's state", JSON, VOTE_STATUS_SCHEMA),
                    "400": _error("malformed vote id"),
                    "404": _error("no vote was accepted with this id"),
                    "503": unavailable,
                },
            }
        },
        "/": {
            "get": {
                "summary": "The voting page (HTML; works without JavaScript)",
                "parameters": [
                    {
                        "name": COOKIE_LAST_VOTE,
                        "in": "cookie",
                        "schema": {"type": "string"},
                        "description": "the voter's latest vote id, whose state the page shows",
                    }
                ],
                "responses": {"200": _ok("HTML page", "text/html", {"type": "string"})},
            }
        },
    }
