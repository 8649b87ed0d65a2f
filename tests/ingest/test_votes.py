"""Parsing and validating vote bodies: every refusal is a 4xx VoteError, never a crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.votes import (
    FORM_MEDIA_TYPE,
    JSON_MEDIA_TYPE,
    Ballot,
    VoteError,
    check_content_length,
    check_media_type,
    is_voter_id,
    json_fields,
    new_voter_id,
    parse_ballot,
    read_limited,
)
from votecontract.entry import MAX_VOTER_ID_CHARS, VOTER_ID_CHARS

OPTIONS = ("cats", "dogs")


def refusal(kind: str, body: bytes) -> VoteError:
    with pytest.raises(VoteError) as error:
        parse_ballot(kind, body, OPTIONS)
    return error.value


@pytest.mark.parametrize(
    ("kind", "body", "ballot"),
    [
        (JSON_MEDIA_TYPE, b'{"option": "cats"}', Ballot("cats", None)),
        (JSON_MEDIA_TYPE, b'{"option": "dogs", "voter_id": "a-B_9"}', Ballot("dogs", "a-B_9")),
        (JSON_MEDIA_TYPE, b'{"option": "cats", "voter_id": null, "x": 1}', Ballot("cats", None)),
        (FORM_MEDIA_TYPE, b"option=cats", Ballot("cats", None)),
        (FORM_MEDIA_TYPE, b"option=dogs&voter_id=v1", Ballot("dogs", "v1")),
        (FORM_MEDIA_TYPE, b"option=dogs&voter_id=", Ballot("dogs", None)),
        (FORM_MEDIA_TYPE, b"x=1&option=cats&x=2", Ballot("cats", None)),
    ],
)
def test_valid_votes(kind: str, body: bytes, ballot: Ballot) -> None:
    assert parse_ballot(kind, body, OPTIONS) == ballot


@pytest.mark.parametrize(
    ("kind", "body", "status", "reason"),
    [
        (JSON_MEDIA_TYPE, b"{", 400, "malformed_json"),
        (JSON_MEDIA_TYPE, b"\xff\xfe{}", 400, "malformed_json"),
        (JSON_MEDIA_TYPE, b'["cats"]', 400, "malformed_json"),
        (JSON_MEDIA_TYPE, b"[" * 3000 + b"]" * 3000, 400, "malformed_json"),
        (JSON_MEDIA_TYPE, b"{}", 400, "missing_field"),
        (JSON_MEDIA_TYPE, b'{"option": null}', 400, "missing_field"),
        (JSON_MEDIA_TYPE, b'{"option": "birds"}', 422, "invalid_option"),
        (JSON_MEDIA_TYPE, b'{"option": ["cats"]}', 422, "invalid_option"),
        (JSON_MEDIA_TYPE, b'{"option": "cats", "voter_id": ""}', 422, "invalid_voter_id"),
        (JSON_MEDIA_TYPE, b'{"option": "cats", "voter_id": 7}', 422, "invalid_voter_id"),
        (JSON_MEDIA_TYPE, b'{"option": "cats", "voter_id": "a b"}', 422, "invalid_voter_id"),
        (FORM_MEDIA_TYPE, b"voter_id=v1", 400, "missing_field"),
        (FORM_MEDIA_TYPE, b"option=cats&option=dogs", 400, "malformed_form"),
        (FORM_MEDIA_TYPE, b"option=\xff", 400, "malformed_form"),
        (FORM_MEDIA_TYPE, b"option=birds", 422, "invalid_option"),
        (FORM_MEDIA_TYPE, b"option=cats&voter_id=%F0%9F%90%88", 422, "invalid_voter_id"),
    ],
)
def test_refusals(kind: str, body: bytes, status: int, reason: str) -> None:
    error = refusal(kind, body)
    assert (error.status, error.reason) == (status, reason)
    assert error.body()["detail"]


def test_an_unknown_option_lists_the_allowed_values() -> None:
    error = refusal(JSON_MEDIA_TYPE, b'{"option": "birds"}')
    assert error.body()["allowed"] == ["cats", "dogs"]
    assert "cats, dogs" in error.detail


def test_voter_id_rules() -> None:
    assert is_voter_id("a" * 64)
    assert not is_voter_id("a" * 65)
    assert not is_voter_id("abc\n")
    assert not is_voter_id(None)
    generated = {new_voter_id() for _ in range(100)}
    assert len(generated) == 100
    assert all(is_voter_id(voter) for voter in generated)


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json", JSON_MEDIA_TYPE),
        ("Application/JSON; charset=utf-8", JSON_MEDIA_TYPE),
        ("application/x-www-form-urlencoded", FORM_MEDIA_TYPE),
    ],
)
def test_media_types(content_type: str, kind: str) -> None:
    assert check_media_type(content_type) == kind


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "multipart/form-data"])
def test_other_media_types_are_refused(content_type: str | None) -> None:
    with pytest.raises(VoteError) as error:
        check_media_type(content_type)
    assert error.value.status == 415
    assert error.value.body()["supported"] == [JSON_MEDIA_TYPE, FORM_MEDIA_TYPE]


def test_an_announced_oversized_body_is_refused_before_reading() -> None:
    check_content_length("4096", 4096)
    check_content_length("nonsense", 4096)
    check_content_length("\u00b2", 4096)
    check_content_length(None, 4096)
    with pytest.raises(VoteError) as error:
        check_content_length("4097", 4096)
    assert error.value.status == 413


async def test_reading_stops_as_soon_as_the_limit_is_passed() -> None:
    received = 0

    async def receive() -> dict[str, object]:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    with pytest.raises(VoteError) as error:
        await read_limited(receive, 4096)
    assert error.value.status == 413
    assert received == 5


async def test_reading_a_chunked_body() -> None:
    chunks = iter([b'{"option":', b' "cats"}', b""])

    async def receive() -> dict[str, object]:
        chunk = next(chunks)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunk)}

    assert await read_limited(receive, 4096) == b'{"option": "cats"}'


async def test_a_client_leaving_mid_body_is_a_400() -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    with pytest.raises(VoteError) as error:
        await read_limited(receive, 4096)
    assert error.value.status == 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
vote_like = st.fixed_dictionaries(
    {},
    optional={
        "option": st.sampled_from(OPTIONS) | json_values,
        # Every length from empty to past the limit, many right around it.
        "voter_id": st.text(VOTER_ID_CHARS, max_size=MAX_VOTER_ID_CHARS + 6)
        | st.integers(MAX_VOTER_ID_CHARS - 2, MAX_VOTER_ID_CHARS + 2).flatmap(
            lambda n: st.text(VOTER_ID_CHARS, min_size=n, max_size=n)
        )
        | json_values,
    },
)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=200) | vote_like.map(lambda v: json.dumps(v).encode()))
def test_any_json_body_is_a_ballot_or_a_4xx(body: bytes) -> None:
    _ballot_or_4xx(JSON_MEDIA_TYPE, body)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_form_body_is_a_ballot_or_a_4xx(body: bytes) -> None:
    _ballot_or_4xx(FORM_MEDIA_TYPE, body)


def _ballot_or_4xx(kind: str, body: bytes) -> None:
    outcome: Ballot | VoteError
    try:
        outcome = parse_ballot(kind, body, OPTIONS)
    except VoteError as error:
        outcome = error
    if isinstance(outcome, VoteError):
        assert 400 <= outcome.status < 500
        json.dumps(outcome.body())
    else:
        assert outcome.option in OPTIONS
        voter = outcome.voter_id
        # Checked against the rule itself, not against is_voter_id (which the parser uses).
        assert voter is None or (
            1 <= len(voter) <= MAX_VOTER_ID_CHARS and set(voter) <= set(VOTER_ID_CHARS)
        )


def _reference_fields(body: bytes) -> object:
    """What `json.loads(body)` makes of a body: its object, or the refusal."""
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):
        return "malformed_json"
    return fields if isinstance(fields, dict) else "malformed_json"


JSON_TEXTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])


@given(JSON_TEXTS, ENCODINGS)
@settings(max_examples=300, deadline=None)
def test_json_bodies_read_as_json_loads_reads_them(value: object, encoding: str) -> None:
    body = json.dumps(value, ensure_ascii=False).encode(encoding, "surrogatepass")
    assert _fields_or_reason(body) == _reference_fields(body)


@given(st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_bytes_are_refused_or_read_as_json_loads_reads_them(body: bytes) -> None:
    assert _fields_or_reason(body) == _reference_fields(body)


@pytest.mark.parametrize(
    "body",
    [b'\xef\xbb\xbf{"option": "cats"}', '{"option": "cats"}'.encode("utf-16"),
     b'{"option": "\xed\xa0\x80"}', b'{"option": "cats"} x', b"[1]"],
)  # fmt: skip
def test_bom_utf16_surrogates_and_trailing_bytes_as_json_loads(body: bytes) -> None:
    assert _fields_or_reason(body) == _reference_fields(body)


def _fields_or_reason(body: bytes) -> object:
    try:
        return json_fields(body)
    except VoteError as error:
        return error.reason
