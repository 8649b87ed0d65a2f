"""Votes as rows of PostgreSQL's COPY text format, validated and built a column at a time.

Per entry, Python bytecode cost the Job most of its CPU: a dict, three int() calls and a tuple
for each vote, then asyncpg encoding every field again. Entries written by ingest all look alike
(the same three fields in the same order), so a run of them is checked with a few passes in C
(set, join, translate, isdigit) and becomes COPY text without converting a stream ID in Python:
PostgreSQL parses the digits. A run that fails any check goes entry by entry through
`entries.parse_entry`, which applies the same rules and names each problem.

The rows are `vote_events` rows (ID, option, voter, accepted_at), so a fresh batch is copied
straight into that table. accepted_at is written as ISO 8601 text in UTC, each distinct
`accepted_ms` of a batch formatted once: a batch holds far fewer distinct milliseconds than
votes, and PostgreSQL parsing the text costs less than computing the instant from the number
in an INSERT ... SELECT (see processor.store).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import add, itemgetter
from typing import Any

from processor.entries import (
    INGEST_FIELD_ORDER,
    MAX_VOTER_CHARS,
    VOTER_CHARS,
    Vote,
    parse_entry_id,
)
from votecontract.entry import MAX_ACCEPTED_MS, MAX_ACCEPTED_MS_DIGITS, accepted_instant

StreamId = tuple[int, int]

# Ingest writes the fields in this order (votecontract.entry.ENTRY_FIELDS); another order is
# valid but takes the slow path.
_INGEST_FIELDS = INGEST_FIELD_ORDER
_ENTRY_ID, _FIELDS = itemgetter(0), itemgetter(1)
_OPTION, _VOTER, _ACCEPTED = itemgetter(1), itemgetter(3), itemgetter(5)
# In COPY text format only these characters need escaping. Options are free text; voter IDs and
# numbers are validated to hold none of them.
# Any number of up to 18 digits fits PostgreSQL's bigint (2**63 - 1 has 19).
_SURELY_BIGINT_DIGITS = 18
# Digit strings of one length compare as their numbers do.
_MAX_ACCEPTED = b"%d" % MAX_ACCEPTED_MS
_MS_DIGITS = 3
_SECOND_DIGITS, _MS_DIGITS_OF = (
    itemgetter(slice(None, -_MS_DIGITS)),
    itemgetter(slice(-_MS_DIGITS, None)),
)
# Each row ends with its accepted_at, so the instants' common UTC offset joins the rows.
_UTC = b"+00"
_UTC_ROW_END = _UTC + b"\n"
_COPY_ESCAPES = {ord("\\"): "\\\\", ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"}


def copy_field(text: str) -> bytes:
    """`text` as one field of COPY text format."""
    return text.translate(_COPY_ESCAPES).encode()


def copy_instant(accepted_ms: int) -> bytes:
    """A valid `accepted_ms` as the COPY text of its timestamptz, exactly: UTC, to the
    millisecond ("2023-11-14 22:13:20.123+00")."""
    return _utc_instant(accepted_ms) + _UTC


def utc_instants(values: Sequence[bytes]) -> Iterator[bytes]:
    """Each raw `accepted_ms` (valid: digits) as `copy_instant` gives it, less the "+00" (the
    caller writes it as part of each row's end), a column at a time: the last three digits are
    the milliseconds, so only each distinct second (a batch spans a few) is formatted in
    Python. Formatting each distinct value cost 2-5 us, and a batch read at 8,000 votes/s
    holds 1,250 of them; this costs about 2 ms per 10,000 votes."""
    if min(map(len, values)) <= _MS_DIGITS:  # within the first second after the epoch
        return (_utc_instant(int(value)) for value in values)
    seconds = list(map(_SECOND_DIGITS, values))
    texts = {digits: _second_text(int(digits)) + b"." for digits in set(seconds)}
    return map(add, map(texts.__getitem__, seconds), map(_MS_DIGITS_OF, values))


def _utc_instant(accepted_ms: int) -> bytes:
    second, millisecond = divmod(accepted_ms, 1000)
    return b"%s.%03d" % (_second_text(second), millisecond)


def _second_text(second: int) -> bytes:
    return accepted_instant(second * 1000).strftime("%Y-%m-%d %H:%M:%S").encode()


def copy_options(options: Iterable[str]) -> dict[bytes, bytes]:
    """Each accepted option, as its bytes arrive from Redis, to its COPY text field."""
    return {option.encode(): copy_field(option) for option in options}


@dataclass(slots=True)
class VoteRows:
    """A batch's valid votes as COPY text rows of `vote_events` (and of the staging table),
    in stream-ID order.

    `first` and `last` are the stream IDs of the first and last row.
    """

    chunks: list[bytes] = field(default_factory=list)
    count: int = 0
    first: StreamId | None = None
    last: StreamId | None = None

    @classmethod
    def of(cls, votes: Sequence[Vote]) -> VoteRows:
        """Rows of parsed votes."""
        rows = cls()
        rows.add_votes(votes)
        return rows

    def add_votes(self, votes: Sequence[Vote]) -> None:
        """Append parsed votes (entries that took the slow path)."""
        if votes:
            chunk = b"".join(
                b"%d\t%d\t%s\t%s\t%s\n"
                % (ms, seq, copy_field(option), voter.encode(), copy_instant(accepted))
                for ms, seq, option, voter, accepted in votes
            )
            self.add_chunk(chunk, len(votes), votes[0][:2], votes[-1][:2])

    def add_chunk(self, chunk: bytes, count: int, first: StreamId, last: StreamId) -> None:
        """Append `count` rows already in COPY text format."""
        self.chunks.append(chunk)
        self.count += count
        if self.first is None:
            self.first = first
        self.last = last

    def payload(self) -> bytes:
        """All rows, as the data of one COPY ... FROM STDIN."""
        return b"".join(self.chunks)

    def rows(self) -> list[bytes]:
        """Each row, without its newline (COPY text escapes a newline inside a field)."""
        return self.payload().split(b"\n")[:-1]

    @classmethod
    def of_rows(cls, rows: Sequence[bytes]) -> VoteRows:
        """Rows as `rows()` gives them, still in stream-ID order."""
        vote_rows = cls()
        if rows:
            chunk = b"\n".join(rows) + b"\n"
            vote_rows.add_chunk(chunk, len(rows), row_id(rows[0]), row_id(rows[-1]))
        return vote_rows

    def __len__(self) -> int:
        return self.count


def row_id(row: bytes) -> StreamId:
    """The stream ID of one row (its first two fields)."""
    ms, seq, _ = row.split(b"\t", 2)
    return int(ms), int(seq)


def add_ingest_votes(
    rows: VoteRows, entries: Sequence[Sequence[Any]], options: Mapping[bytes, bytes]
) -> bool:
    """Append `entries` to `rows` if every one is a valid vote laid out as ingest writes it.

    Checks whole columns against the rules `parse_entry` applies one by one: the three fields,
    a known option, a voter ID of 1-64 characters A-Z a-z 0-9 _ -, an accepted-at of 1-15
    ASCII digits up to MAX_ACCEPTED_MS, and stream IDs whose parts have at most 18 digits.
    Returns False, appending nothing, if any entry fails (or is gone: fields None). `options`
    comes from `copy_options`.
    """
    if not entries:
        return True
    fields: list[Sequence[bytes]] = list(map(_FIELDS, entries))
    if not _ingest_layout(fields):
        return False
    raw_options = list(map(_OPTION, fields))
    voters = list(map(_VOTER, fields))
    accepted = list(map(_ACCEPTED, fields))
    if not options.keys() >= set(raw_options):
        return False
    if not (_valid_voters(voters) and _valid_accepted(accepted)):
        return False
    ids: list[bytes] = list(map(_ENTRY_ID, entries))
    # A stream ID is "<ms>-<seq>": one dash, digits either side.
    if not _ids_surely_fit_bigint(ids):
        return False  # a part may be beyond bigint: parse_entry tells exactly
    id_fields = b"\n".join(ids).replace(b"-", b"\t").split(b"\n")
    instants = utc_instants(accepted)
    lines = zip(id_fields, map(options.__getitem__, raw_options), voters, instants, strict=True)
    chunk = _UTC_ROW_END.join(map(b"\t".join, lines)) + _UTC_ROW_END
    rows.add_chunk(chunk, len(ids), parse_entry_id(ids[0]), parse_entry_id(ids[-1]))
    return True


def _ids_surely_fit_bigint(ids: list[bytes]) -> bool:
    """No part of these stream IDs has more than 18 digits. An ID of up to 19 characters has
    no such part (ingest's are 15-19: 13 digits, a dash, the sequence), so the split into parts
    (about a tenth of this function's time per run) is taken only for longer ones."""
    if max(map(len, ids)) <= _SURELY_BIGINT_DIGITS + 1:
        return True
    return max(map(len, b"-".join(ids).split(b"-"))) <= _SURELY_BIGINT_DIGITS


def _ingest_layout(fields: list[Sequence[bytes]]) -> bool:
    try:
        if set(map(len, fields)) != {6}:
            return False
    except TypeError:  # fields None: a pending entry deleted from the stream
        return False
    return all(
        set(map(itemgetter(position), fields)) == {name}
        for position, name in zip((0, 2, 4), _INGEST_FIELDS, strict=True)
    )


def _valid_voters(voters: list[bytes]) -> bool:
    lengths = set(map(len, voters))
    if min(lengths) < 1 or max(lengths) > MAX_VOTER_CHARS:
        return False
    return not b"".join(voters).translate(None, VOTER_CHARS)


def _valid_accepted(values: list[bytes]) -> bool:
    """votecontract.entry.parse_accepted_ms's rule, a column at a time (bytes.isdigit is
    ASCII-only)."""
    lengths = set(map(len, values))
    longest = max(lengths)
    if min(lengths) < 1 or longest > MAX_ACCEPTED_MS_DIGITS or not b"".join(values).isdigit():
        return False
    if longest < len(_MAX_ACCEPTED):
        return True
    return max(value for value in values if len(value) == longest) <= _MAX_ACCEPTED
