"""Reading and validating a vote from a request body, without trusting anything in it."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import parse_qs

from starlette.types import Receive

from votecontract.entry import MAX_VOTER_ID_CHARS, VOTER_ID_REGEX
from votecontract.names import FIELD_OPTION, FIELD_VOTER_ID

JSON_MEDIA_TYPE = "application/json"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MEDIA_TYPES = (JSON_MEDIA_TYPE, FORM_MEDIA_TYPE)
VOTER_ID_PATTERN = re.compile(VOTER_ID_REGEX)
_DECODER = json.JSONDecoder()  # what json.loads uses for a str


@dataclass
class VoteError(Exception):
    """A request the service refuses; `reason` is a stable code, `detail` a sentence."""

    status: int
    reason: str
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": self.reason, "detail": self.detail, **self.extra}


@dataclass(frozen=True, slots=True)
class Ballot:
    option: str
    voter_id: str | None


def media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


def check_media_type(content_type: str | None) -> str:
    kind = media_type(content_type)
    if kind not in MEDIA_TYPES:
        raise VoteError(
            415,
            "unsupported_media_type",
            f"Content-Type must be {' or '.join(MEDIA_TYPES)}",
            {"supported": list(MEDIA_TYPES)},
        )
    return kind


def body_too_large(limit: int) -> VoteError:
    # Connection: close, as the rest of the body is left unread on the connection.
    return VoteError(
        413,
        "body_too_large",
        f"the body must not exceed {limit} bytes",
        {"limit": limit},
        {"Connection": "close"},
    )


def check_content_length(header: str | None, limit: int) -> None:
    """Refuse at once a body announced as too large (a lying header is caught while reading)."""
    value = (header or "").strip()
    if value.isascii() and value.isdigit() and int(value) > limit:
        raise body_too_large(limit)


async def read_limited(receive: Receive, limit: int) -> bytes:
    """The body, or VoteError 413 as soon as it passes `limit`; the rest is never read."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise VoteError(400, "client_disconnected", "the client left before sending the body")
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > limit:
            raise body_too_large(limit)
        if not message.get("more_body", False):
            return body


def parse_ballot(kind: str, body: bytes, options: Collection[str]) -> Ballot:
    """The vote in `body` (of media type `kind`), checked against `options`."""
    fields = json_fields(body) if kind == JSON_MEDIA_TYPE else _form_fields(body)
    if FIELD_OPTION not in fields or fields[FIELD_OPTION] is None:
        raise VoteError(400, "missing_field", f"the body must contain '{FIELD_OPTION}'")
    option = fields[FIELD_OPTION]
    if not isinstance(option, str) or option not in options:
        raise VoteError(
            422,
            "invalid_option",
            f"'{FIELD_OPTION}' must be one of: {', '.join(options)}",
            {"allowed": list(options)},
        )
    voter_id = fields.get(FIELD_VOTER_ID)
    if voter_id is not None and not is_voter_id(voter_id):
        raise VoteError(
            422,
            "invalid_voter_id",
            f"'{FIELD_VOTER_ID}' must be 1-{MAX_VOTER_ID_CHARS} characters"
            " of A-Z, a-z, 0-9, '_' or '-'",
        )
    return Ballot(option, voter_id)


def is_voter_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and VOTER_ID_PATTERN.fullmatch(value) is not None


def new_voter_id() -> str:
    return secrets.token_urlsafe(16)


def json_fields(body: bytes) -> dict[str, Any]:
    """The object of a JSON body, read exactly as `json.loads(body)` reads it.

    A UTF-8 body is decoded and parsed directly: `json.loads` on bytes first guesses the
    encoding in Python (several calls per vote). A body that fails that way (UTF-16/32, a
    UTF-8 BOM, lone surrogates, or not JSON at all) goes through `json.loads` for its verdict.
    """
    try:
        try:
            fields = _DECODER.decode(body.decode())
        except ValueError:
            fields = json.loads(body)
    except (ValueError, RecursionError):
        raise VoteError(400, "malformed_json", "the body is not valid JSON") from None
    if not isinstance(fields, dict):
        raise VoteError(400, "malformed_json", "the body must be a JSON object")
    return fields


def _form_fields(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise VoteError(400, "malformed_form", "the form body is not valid UTF-8") from None
    fields: dict[str, Any] = {}
    for name, values in parse_qs(text).items():
        if len(values) > 1 and name in (FIELD_OPTION, FIELD_VOTER_ID):
            raise VoteError(400, "malformed_form", f"'{name}' is given more than once")
        fields[name] = values[0]
    return fields
