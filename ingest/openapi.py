"""The OpenAPI 3.1 description of the API, kept by hand so it says exactly what is checked.

Another component adds its own paths with `build_spec(settings, extra_paths)`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ingest.cookies import VOTER_COOKIE
from ingest.settings import IngestSettings
from ingest.votes import FORM_MEDIA_TYPE, JSON_MEDIA_TYPE, VOTER_ID_PATTERN
from votecontract.names import FIELD_OPTION, FIELD_VOTER_ID

Spec = dict[str, Any]

ERROR_SCHEMA: Spec = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
SET_VOTER = {
    "Set-Cookie": {
        "schema": {"type": "string"},
        "description": f"`{VOTER_COOKIE}`, when the request named no voter and got a new one "
        "(on 503 too: Redis may have stored the vote, and the retry must be the same voter)",
    }
}


def _error(description: str, headers: Spec | None = None) -> Spec:
    response: Spec = {
        "description": description,
        "content": {JSON_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _vote_schema(settings: IngestSettings, *, form: bool) -> Spec:
    # No voter_id: absent, JSON null, or (an HTML form's empty input) an empty form field.
    voter_id: Spec = {"type": ["string", "null"], "pattern": f"^{VOTER_ID_PATTERN.pattern}$"}
    if form:
        voter_id = {"type": "string", "pattern": f"^({VOTER_ID_PATTERN.pattern})?$"}
    return {
        "type": "object",
        "required": [FIELD_OPTION],
        "properties": {
            FIELD_OPTION: {"type": "string", "enum": list(settings.options)},
            FIELD_VOTER_ID: voter_id,
        },
    }


def _vote_path(settings: IngestSettings) -> Spec:
    accepted = {
        "type": "object",
        "required": ["id", "status_url"],
        "properties": {"id": {"type": "string"}, "status_url": {"type": "string"}},
    }
    return {
        "post": {
            "summary": "Cast a vote",
            "description": f"Voter: body `{FIELD_VOTER_ID}`, else the `{VOTER_COOKIE}` "
            "cookie, else a new one set as a cookie.",
            "parameters": [{"name": VOTER_COOKIE, "in": "cookie", "schema": {"type": "string"}}],
            "requestBody": {
                "required": True,
                "content": {
                    JSON_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Vote"}},
                    FORM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/VoteForm"}},
                },
            },
            "responses": {
                "202": {
                    "description": "Redis confirmed the vote",
                    "headers": {"Location": {"schema": {"type": "string"}}, **SET_VOTER},
                    "content": {JSON_MEDIA_TYPE: {"schema": accepted}},
                },
                "400": _error("malformed body or missing field"),
                "413": _error(f"body over {settings.max_body_bytes} bytes"),
                "415": _error("unsupported Content-Type"),
                "422": _error("unknown option or malformed voter_id"),
                "503": _error(
                    "backlog over its limit, Redis unavailable, or the stream's IDs beyond"
                    " what the processor can record",
                    {**RETRY_AFTER, **SET_VOTER},
                ),
            },
        }
    }


def _probe(summary: str) -> Spec:
    plain: Spec = {
        "description": summary,
        "content": {JSON_MEDIA_TYPE: {"schema": {"type": "object"}}},
    }
    return {"get": {"summary": summary, "responses": {"200": plain}}}


def build_spec(settings: IngestSettings, extra_paths: Spec | None = None) -> Spec:
    ready = _probe("Redis reachable and the consumer group present")
    ready["get"]["responses"]["503"] = _error("not ready", RETRY_AFTER)
    metrics = {
        "description": "Prometheus text format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "vote-pipeline ingest", "version": "0.1.0"},
        "paths": {
            "/vote": _vote_path(settings),
            "/healthz": _probe("The process is alive"),
            "/readyz": ready,
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": metrics}}},
            "/openapi.json": _probe("This document"),
            **(extra_paths or {}),
        },
        "components": {
            "schemas": {
                "Vote": _vote_schema(settings, form=False),
                "VoteForm": _vote_schema(settings, form=True),
                "Error": ERROR_SCHEMA,
            }
        },
    }


async def openapi_endpoint(request: Request) -> Response:
    spec: Spec = request.app.state.openapi
    return JSONResponse(spec)
