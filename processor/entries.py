"""Validation of raw stream entries: each becomes a Vote or a Poison naming its problem."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from votecontract.entry import (
    BIGINT_MAX,
    ENTRY_FIELDS,
    MAX_ACCEPTED_MS,
    MAX_VOTER_ID_CHARS,
    VOTER_ID_CHARS,
    VOTER_ID_REGEX,
    fits_bigint,
    parse_accepted_ms,
)
from votecontract.names import FIELD_ACCEPTED_MS, FIELD_OPTION, FIELD_VOTER_ID

OPTION_FIELD = FIELD_OPTION.encode()
VOTER_ID_FIELD = FIELD_VOTER_ID.encode()
ACCEPTED_MS_FIELD = FIELD_ACCEPTED_MS.encode()
# The fields in the order ingest writes them (the fast path in voterows relies on it).
INGEST_FIELD_ORDER = tuple(name.encode() for name in ENTRY_FIELDS)
_REQUIRED = INGEST_FIELD_ORDER
VOTER_CHARS = VOTER_ID_CHARS.encode()
MAX_VOTER_CHARS = MAX_VOTER_ID_CHARS
_VOTER_PATTERN = re.compile(VOTER_ID_REGEX.encode())
_SHOWN_CHARS = 64
_SHOWN_NAMES = 10
# What a dead letter keeps of its entry. Redis takes values up to 512 MiB and millions of
# fields, PostgreSQL's jsonb less than 256 MiB: kept whole, one entry could make the dead-letter
# path itself fail. Up to KEPT_BYTES the fields are kept exactly; a larger entry (never a valid
# vote) keeps the first _KEPT_PAIRS fields, each cut to _KEPT_CHARS, in the readable form only.
KEPT_BYTES = 1 << 20
_KEPT_PAIRS = 1000
_KEPT_CHARS = 1024
ID_BEYOND_BIGINT = (
    f"stream ID beyond PostgreSQL's bigint ({BIGINT_MAX}): it can never be recorded; "
    "the stream's IDs must be reset"
)
_MS_RULE = (
    f"{FIELD_ACCEPTED_MS} must be 1-15 ASCII digits, milliseconds since the epoch"
    f" up to {MAX_ACCEPTED_MS} (9999-12-31T23:59:59.999Z)"
)


# A valid vote: (entry_ms, entry_seq, option, voter_id, accepted_ms), the staging table's
# column order.
Vote = tuple[int, int, str, str, int]


@dataclass(frozen=True, slots=True)
class Poison:
    """An entry that can never be recorded, with its original fields and the reason."""

    entry_id: bytes
    fields: Sequence[bytes]
    reason: str


def parse_entry_id(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq)


def option_lookup(options: Sequence[str]) -> dict[bytes, str]:
    """The accepted options keyed by their UTF-8 bytes, as they arrive from Redis."""
    return {option.encode(): option for option in options}


def parse_entry(
    entry_id: bytes, fields: Sequence[bytes], options: Mapping[bytes, str]
) -> Vote | Poison:
    """Validate one entry's flat field list [name, value, ...] against the stream contract."""
    if not fits_bigint(entry_id):
        return Poison(entry_id, fields, ID_BEYOND_BIGINT)
    values = dict(zip(fields[::2], fields[1::2], strict=False))
    reason = _field_problem(fields, values)
    if reason is not None:
        return Poison(entry_id, fields, reason)
    raw_option, raw_voter = values[OPTION_FIELD], values[VOTER_ID_FIELD]
    raw_ms = values[ACCEPTED_MS_FIELD]
    option = options.get(raw_option)
    if option is None:
        return Poison(entry_id, fields, _option_problem(raw_option, options))
    if not _VOTER_PATTERN.fullmatch(raw_voter):
        return Poison(entry_id, fields, _voter_problem(raw_voter))
    accepted_ms = parse_accepted_ms(raw_ms)
    if accepted_ms is None:
        return Poison(entry_id, fields, f"{_MS_RULE}, got {_shown(raw_ms)}")
    ms, seq = parse_entry_id(entry_id)
    return (ms, seq, option, raw_voter.decode("ascii"), accepted_ms)


def _field_problem(fields: Sequence[bytes], values: dict[bytes, bytes]) -> str | None:
    if len(values) * 2 != len(fields):
        counts = Counter(fields[::2])
        return "duplicate field " + _names(name for name, count in counts.items() if count > 1)
    missing = [name for name in _REQUIRED if name not in values]
    if missing:
        return "missing field " + ", ".join(name.decode() for name in missing)
    if len(values) != len(_REQUIRED):
        return "unexpected field " + _names(name for name in values if name not in _REQUIRED)
    return None


def _names(names: Iterable[bytes]) -> str:
    """Field names for a reason: sorted, at most _SHOWN_NAMES of them."""
    ordered = sorted(names)
    shown = ", ".join(_shown(name) for name in ordered[:_SHOWN_NAMES])
    hidden = len(ordered) - _SHOWN_NAMES
    return shown + (f" and {hidden} more" if hidden > 0 else "")


def _option_problem(raw: bytes, options: Mapping[bytes, str]) -> str:
    if not _is_utf8(raw):
        return f"{FIELD_OPTION} is not valid UTF-8: {_shown(raw)}"
    known = ", ".join(options.values())
    return f"unknown {FIELD_OPTION} {_shown(raw)}; expected one of {known}"


def _voter_problem(raw: bytes) -> str:
    if not _is_utf8(raw):
        return f"{FIELD_VOTER_ID} is not valid UTF-8: {_shown(raw)}"
    rule = f"1-{MAX_VOTER_CHARS} characters of A-Z a-z 0-9 _ -"
    return f"{FIELD_VOTER_ID} must be {rule}, got {_shown(raw)}"


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _shown(raw: bytes) -> str:
    text = as_text(raw)
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    return repr(text)


def as_text(raw: bytes) -> str:
    """Bytes as text for JSON: undecodable bytes and NUL (jsonb refuses it) escaped as \\xNN."""
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def fields_as_text(fields: Sequence[bytes]) -> dict[str, str]:
    """The original fields as a JSON object (a repeated field keeps its last value); of an
    entry larger than KEPT_BYTES, the first fields, each cut short."""
    if kept_exactly(fields):
        pairs = zip(fields[::2], fields[1::2], strict=False)
        return {as_text(name): as_text(value) for name, value in pairs}
    pairs = zip(fields[: 2 * _KEPT_PAIRS : 2], fields[1 : 2 * _KEPT_PAIRS : 2], strict=False)
    return {_cut(name): _cut(value) for name, value in pairs}


def kept_exactly(fields: Sequence[bytes]) -> bool:
    """Whether a dead letter keeps these fields exactly (replay needs them so)."""
    return sum(map(len, fields)) <= KEPT_BYTES


def _cut(raw: bytes) -> str:
    if len(raw) <= _KEPT_CHARS:
        return as_text(raw)
    return f"{as_text(raw[:_KEPT_CHARS])}... ({len(raw)} bytes)"
