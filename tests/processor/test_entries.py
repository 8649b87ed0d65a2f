"""Validation of raw stream entries."""

from __future__ import annotations

import pytest

from processor.entries import (
    ID_BEYOND_BIGINT,
    KEPT_BYTES,
    Poison,
    fields_as_text,
    kept_exactly,
    option_lookup,
    parse_entry,
)

OPTIONS = option_lookup(("cats", "dogs"))
VALID = [b"option", b"cats", b"voter_id", b"v_1-A", b"accepted_ms", b"1700000000123"]


def test_a_valid_entry_becomes_a_vote_in_any_field_order() -> None:
    reordered = VALID[2:] + VALID[:2]
    for fields in (VALID, reordered):
        assert parse_entry(b"17-3", fields, OPTIONS) == (17, 3, "cats", "v_1-A", 1700000000123)


def test_accepted_ms_may_reach_the_last_millisecond_of_year_9999() -> None:
    fields = [*VALID[:5], b"253402300799999"]
    assert parse_entry(b"1-0", fields, OPTIONS) == (1, 0, "cats", "v_1-A", 253402300799999)


def test_a_voter_id_of_exactly_64_characters_is_valid_and_65_is_not() -> None:
    longest = [*VALID[:3], b"Z" * 64, *VALID[4:]]
    too_long = [*VALID[:3], b"Z" * 65, *VALID[4:]]
    assert parse_entry(b"1-0", longest, OPTIONS) == (1, 0, "cats", "Z" * 64, 1700000000123)
    parsed = parse_entry(b"1-0", too_long, OPTIONS)
    assert isinstance(parsed, Poison)
    assert parsed.reason.startswith("voter_id must be 1-64 characters")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ([b"option", b"cats", b"voter_id", b"v"], "missing field accepted_ms"),
        ([*VALID, b"option", b"dogs"], "duplicate field 'option'"),
        ([*VALID, b"color", b"red"], "unexpected field 'color'"),
        ([*VALID[:1], b"fish", *VALID[2:]], "unknown option 'fish'; expected one of cats, dogs"),
        ([*VALID[:1], b"\xff\xfe", *VALID[2:]], "option is not valid UTF-8: '\\\\xff\\\\xfe'"),
        ([*VALID[:3], b"", *VALID[4:]], "voter_id must be 1-64 characters"),
        ([*VALID[:3], b"a" * 65, *VALID[4:]], "voter_id must be 1-64 characters"),
        ([*VALID[:3], b"bob smith", *VALID[4:]], "voter_id must be 1-64 characters"),
        ([*VALID[:3], b"b\xc3", *VALID[4:]], "voter_id is not valid UTF-8"),
        ([*VALID[:5], b"-1"], "accepted_ms must be 1-15 ASCII digits, milliseconds since the"),
        ([*VALID[:5], b"12.5"], "accepted_ms must be 1-15 ASCII digits"),
        ([*VALID[:5], b"9" * 16], "accepted_ms must be 1-15 ASCII digits"),
        ([*VALID[:5], b"253402300800000"], "accepted_ms must be 1-15 ASCII digits"),
        ([*VALID[:5], "\uff11\uff12".encode()], "accepted_ms must be 1-15 ASCII digits"),
        ([*VALID[:5], "\u0661\u0662".encode()], "accepted_ms must be 1-15 ASCII digits"),
    ],
)
def test_a_bad_entry_is_poison_with_its_reason(fields: list[bytes], reason: str) -> None:
    parsed = parse_entry(b"1-0", fields, OPTIONS)
    assert isinstance(parsed, Poison)
    assert parsed.reason.startswith(reason), parsed.reason
    assert (parsed.entry_id, parsed.fields) == (b"1-0", fields)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ([b"option", b"cats"], "missing field voter_id, accepted_ms"),
        ([*VALID, b"option", b"x", b"voter_id", b"y"], "duplicate field 'option', 'voter_id'"),
        ([*VALID, b"b", b"1", b"a", b"2"], "unexpected field 'a', 'b'"),
    ],
)
def test_every_field_at_fault_is_named(fields: list[bytes], reason: str) -> None:
    parsed = parse_entry(b"1-0", fields, OPTIONS)
    assert isinstance(parsed, Poison)
    assert parsed.reason == reason


@pytest.mark.parametrize(
    ("option", "shown"),
    [
        (b"o" * 64, repr("o" * 64)),  # up to 64 characters shown whole
        (b"o" * 65, repr("o" * 64 + "...")),
        (b"\xff" * 17, repr("\\xff" * 16 + "...")),  # escaped bytes count as shown
    ],
)
def test_a_long_value_is_shown_cut_at_64_characters(option: bytes, shown: str) -> None:
    parsed = parse_entry(b"1-0", [b"option", option, *VALID[2:]], OPTIONS)
    assert isinstance(parsed, Poison)
    assert shown in parsed.reason, parsed.reason


def test_fields_as_text_escapes_what_json_cannot_hold() -> None:
    text = fields_as_text([b"option", b"\xff", b"voter_id", b"a\x00b"])
    assert text == {"option": "\\xff", "voter_id": "a\\x00b"}


def test_an_id_beyond_bigint_is_poison_whatever_the_fields() -> None:
    for entry_id in (b"9223372036854775808-0", b"5-9223372036854775808"):
        parsed = parse_entry(entry_id, VALID, OPTIONS)
        assert isinstance(parsed, Poison)
        assert parsed.reason == ID_BEYOND_BIGINT
    assert parse_entry(b"9223372036854775807-9223372036854775807", VALID, OPTIONS) == (
        2**63 - 1, 2**63 - 1, "cats", "v_1-A", 1700000000123,
    )  # fmt: skip


def test_a_reason_names_at_most_ten_fields() -> None:
    names = [b"f%05d" % number for number in range(50_000)]
    many = [*VALID, *(part for name in names for part in (name, b"x"))]
    parsed = parse_entry(b"1-0", many, OPTIONS)
    assert isinstance(parsed, Poison)
    assert parsed.reason.startswith("unexpected field 'f00000', 'f00001'")
    assert parsed.reason.endswith(" and 49990 more")
    repeated = parse_entry(b"1-0", [*many, *many], OPTIONS)
    assert isinstance(repeated, Poison)
    assert repeated.reason.endswith(" and 49993 more")


def test_a_huge_entry_is_kept_readable_and_cut_short() -> None:
    huge = [b"option", b"\xff" * (KEPT_BYTES + 1), *(b"n%d" % n for n in range(4000))]
    assert not kept_exactly(huge)
    text = fields_as_text(huge)
    assert text["option"] == "\\xff" * 1024 + f"... ({KEPT_BYTES + 1} bytes)"
    assert len(text) == 1000
    assert kept_exactly(VALID)
