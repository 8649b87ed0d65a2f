"""The layout of one vote entry in the stream and the rules its values keep.

Ingest builds every entry with `build_entry`; the processor validates entries (from ingest or
written straight into the stream by anyone allowed to XADD) against the constants here, and its
fast path relies on `ENTRY_FIELDS` being the order `build_entry` writes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from votecontract.names import FIELD_ACCEPTED_MS, FIELD_OPTION, FIELD_VOTER_ID

# The fields of an entry, in the order ingest writes them.
ENTRY_FIELDS = (FIELD_OPTION, FIELD_VOTER_ID, FIELD_ACCEPTED_MS)

# A voter ID: 1 to 64 characters of this alphabet (URL-safe base64's, as
# `secrets.token_urlsafe` produces), so it is safe in a cookie, a URL and COPY text alike.
VOTER_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
MAX_VOTER_ID_CHARS = 64
VOTER_ID_REGEX = rf"[A-Za-z0-9_-]{{1,{MAX_VOTER_ID_CHARS}}}"

# `accepted_ms`: 1-15 ASCII digits, milliseconds since the epoch, at most MAX_ACCEPTED_MS: the
# last instant every reader represents. PostgreSQL's timestamptz goes on to year 294276, but
# Python's datetime (asyncpg's decoding, the read side) ends with year 9999.
MAX_ACCEPTED_MS_DIGITS = 15
MAX_ACCEPTED_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Entry = tuple[str, str, str, str, str, str]

# A stream ID is `<ms>-<seq>`, two unsigned 64-bit parts; PostgreSQL keys recorded votes by
# both as bigint. Redis takes any ID above the stream's last one from whoever may XADD, and
# generates IDs above it from then on, so an ID beyond bigint is possible and never recordable.
BIGINT_MAX = 2**63 - 1


def fits_bigint(entry_id: str | bytes) -> bool:
    """Whether both parts of the stream ID `entry_id` fit PostgreSQL's bigint."""
    text = entry_id.decode("ascii") if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms) <= BIGINT_MAX and int(seq) <= BIGINT_MAX


def build_entry(option: str, voter_id: str, accepted_ms: int) -> Entry:
    """The flat field list [name, value, ...] of one vote, as XADD takes it."""
    return (FIELD_OPTION, option, FIELD_VOTER_ID, voter_id, FIELD_ACCEPTED_MS, str(accepted_ms))


def parse_accepted_ms(raw: bytes) -> int | None:
    """The value of an `accepted_ms` field, or None if it breaks the rule above. Bytes, not
    str: bytes.isdigit is ASCII-only, str.isdigit also takes other scripts' digits."""
    if not (0 < len(raw) <= MAX_ACCEPTED_MS_DIGITS and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= MAX_ACCEPTED_MS else None


def accepted_instant(accepted_ms: int) -> datetime:
    """The instant of a valid `accepted_ms`, exactly (no float division)."""
    return _EPOCH + timedelta(milliseconds=accepted_ms)


def now_ms() -> int:
    """The `accepted_ms` of a vote accepted now."""
    return time.time_ns() // 1_000_000
