"""The layout of one vote entry in the stream and the rules its values keep.

Ingest builds every entry with `build_entry`; the processor validates entries (from ingest or
written straight into the stream by anyone allowed to XADD) against the constants here, and its
fast path relies on `ENTRY_FIELDS` being the order `build_entry` writes.
"""

from __future__ import annotations

import time

from votecontract.names import FIELD_ACCEPTED_MS, FIELD_OPTION, FIELD_VOTER_ID

# The fields of an entry, in the order ingest writes them.
ENTRY_FIELDS = (FIELD_OPTION, FIELD_VOTER_ID, FIELD_ACCEPTED_MS)

# A voter ID: 1 to 64 characters of this alphabet (URL-safe base64's, as
# `secrets.token_urlsafe` produces), so it is safe in a cookie, a URL and COPY text alike.
VOTER_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
MAX_VOTER_ID_CHARS = 64
VOTER_ID_REGEX = rf"[A-Za-z0-9_-]{{1,{MAX_VOTER_ID_CHARS}}}"

# `accepted_ms`: ASCII digits, milliseconds since the epoch. Up to 15 digits keeps the instant
# inside PostgreSQL's timestamptz range (year < 294276).
MAX_ACCEPTED_MS_DIGITS = 15

Entry = tuple[str, str, str, str, str, str]


def build_entry(option: str, voter_id: str, accepted_ms: int) -> Entry:
    """The flat field list [name, value, ...] of one vote, as XADD takes it."""
    return (FIELD_OPTION, option, FIELD_VOTER_ID, voter_id, FIELD_ACCEPTED_MS, str(accepted_ms))


def now_ms() -> int:
    """The `accepted_ms` of a vote accepted now."""
    return time.time_ns() // 1_000_000
