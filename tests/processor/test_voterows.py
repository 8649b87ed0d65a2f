"""Whole-run validation into COPY rows agrees with entry-by-entry validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processor.entries import Vote, option_lookup, parse_entry
from processor.voterows import VoteRows, add_ingest_votes, copy_field, copy_options
from votecontract.entry import MAX_VOTER_ID_CHARS, VOTER_ID_CHARS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPTIONS = ("cats", "dogs", "a\tb\\c")
LOOKUP = option_lookup(OPTIONS)
COPY_OPTIONS = copy_options(OPTIONS)


def copy_rows(rows: VoteRows) -> list[tuple[int, int, bytes, bytes, int]]:
    """The rows as values (digits may differ in leading zeros, numbers may not)."""
    lines = rows.payload().split(b"\n")
    assert lines.pop() == b""
    fields = [line.split(b"\t") for line in lines]
    return [(int(ms), int(seq), option, voter, ms_of(at)) for ms, seq, option, voter, at in fields]


def ms_of(copy_text: bytes) -> int:
    """The milliseconds since the epoch of a COPY text timestamptz the rows carry."""
    instant = datetime.fromisoformat(copy_text.decode())
    return (instant - EPOCH) // timedelta(milliseconds=1)


def ingest_entry(entry_id: bytes, option: bytes, voter: bytes, accepted: bytes) -> list[object]:
    return [entry_id, [b"option", option, b"voter_id", voter, b"accepted_ms", accepted]]


def test_ingest_entries_become_the_same_rows_as_parsed_votes() -> None:
    entries = [
        ingest_entry(b"17-3", b"cats", b"v_1-A", b"1700000000123"),
        ingest_entry(b"18-0", b"a\tb\\c", b"Z" * 64, b"0"),
    ]
    rows = VoteRows()
    assert add_ingest_votes(rows, entries, COPY_OPTIONS)
    assert rows.payload() == (
        b"17\t3\tcats\tv_1-A\t2023-11-14 22:13:20.123+00\n"
        + b"18\t0\ta\\tb\\\\c\t"
        + b"Z" * 64
        + b"\t1970-01-01 00:00:00.000+00\n"
    )
    assert (len(rows), rows.first, rows.last) == (2, (17, 3), (18, 0))


def test_the_fast_path_takes_a_voter_id_of_64_characters_and_refuses_65() -> None:
    rows = VoteRows()
    assert add_ingest_votes(rows, [ingest_entry(b"1-0", b"cats", b"Z" * 64, b"1")], COPY_OPTIONS)
    assert rows.payload() == b"1\t0\tcats\t" + b"Z" * 64 + b"\t1970-01-01 00:00:00.001+00\n"
    for run in ([b"Z" * 65], [b"a", b"Z" * 65], [b"Z" * 65, b"Z" * 64]):
        entries = [ingest_entry(b"%d-0" % i, b"cats", v, b"1") for i, v in enumerate(run, 1)]
        assert not add_ingest_votes(VoteRows(), entries, COPY_OPTIONS)


def test_one_odd_entry_sends_the_whole_run_to_the_slow_path() -> None:
    good = ingest_entry(b"1-0", b"cats", b"ann", b"1")
    for odd in (
        ingest_entry(b"2-0", b"fish", b"bob", b"1"),
        ingest_entry(b"2-0", b"cats", b"bob smith", b"1"),
        ingest_entry(b"2-0", b"cats", b"b" * 65, b"1"),
        ingest_entry(b"2-0", b"cats", b"", b"1"),
        ingest_entry(b"2-0", b"cats", b"bob", b"-1"),
        ingest_entry(b"2-0", b"cats", b"bob", b"9" * 16),
        [b"2-0", [b"voter_id", b"bob", b"option", b"cats", b"accepted_ms", b"1"]],
        [b"2-0", None],
    ):
        rows = VoteRows()
        assert not add_ingest_votes(rows, [good, odd], COPY_OPTIONS)
        assert (rows.payload(), len(rows), rows.first) == (b"", 0, None)


def test_copy_field_escapes_what_copy_text_format_reserves() -> None:
    assert copy_field("a\\b\tc\nd\re") == b"a\\\\b\\tc\\nd\\re"
    assert copy_field("ñ") == "ñ".encode()


_names = st.sampled_from([b"option", b"voter_id", b"accepted_ms", b"other"])
_values = st.one_of(
    st.sampled_from([b"cats", b"dogs", b"a\tb\\c", b"fish", b"v-1", b"0", b"170000000000", b""]),
    st.binary(max_size=70),
)
# Voter IDs of the right alphabet, of every length from empty to past the limit, most of
# them near the limit (where an off-by-one in either path would show).
_voter_ids = st.one_of(
    st.text(VOTER_ID_CHARS, max_size=MAX_VOTER_ID_CHARS + 6),
    st.integers(MAX_VOTER_ID_CHARS - 2, MAX_VOTER_ID_CHARS + 2).flatmap(
        lambda n: st.text(VOTER_ID_CHARS, min_size=n, max_size=n)
    ),
).map(str.encode)
_ingest_entries = st.builds(
    lambda option, voter, accepted: [
        b"option",
        option,
        b"voter_id",
        voter,
        b"accepted_ms",
        accepted,
    ],
    st.sampled_from([b"cats", b"dogs", b"a\tb\\c", b"fish"]),
    st.one_of(_voter_ids, _values),
    st.one_of(st.from_regex(rb"\A[0-9]{1,15}\Z"), _values),
)
_any_fields = st.lists(st.tuples(_names, _values), max_size=4).map(
    lambda pairs: [part for pair in pairs for part in pair]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_ingest_entries, _ingest_entries, _any_fields), max_size=6))
def test_whole_run_validation_agrees_with_entry_by_entry(fields: list[list[bytes]]) -> None:
    ids = [b"%d-0" % number for number in range(1, len(fields) + 1)]
    entries = [[entry_id, entry_fields] for entry_id, entry_fields in zip(ids, fields, strict=True)]
    parsed = [parse_entry(entry_id, f, LOOKUP) for entry_id, f in zip(ids, fields, strict=True)]
    votes: list[Vote] = [vote for vote in parsed if isinstance(vote, tuple)]
    ingest_layout = all(f[0:5:2] == [b"option", b"voter_id", b"accepted_ms"] for f in fields)
    rows = VoteRows()
    accepted = add_ingest_votes(rows, entries, COPY_OPTIONS)
    assert accepted == (len(votes) == len(entries) and ingest_layout)
    if accepted:
        assert copy_rows(rows) == copy_rows(VoteRows.of(votes))
        assert len(rows) == len(votes)
    else:
        assert len(rows) == 0


def test_rows_split_and_join_back_in_order() -> None:
    votes = [(1, 0, "a\tb\\c", "v1", 5), (1, 1, "cats", "v2", 6), (9, 3, "x\ny", "v3", 7)]
    rows = VoteRows.of(votes)
    split = rows.rows()
    assert len(split) == 3
    halves = [VoteRows.of_rows(split[:1]), VoteRows.of_rows(split[1:])]
    assert [(half.first, half.last, len(half)) for half in halves] == [
        ((1, 0), (1, 0), 1),
        ((1, 1), (9, 3), 2),
    ]
    assert VoteRows.of_rows(split).payload() == rows.payload()
    assert len(VoteRows.of_rows([])) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(_voter_ids, min_size=1, max_size=4))
def test_both_paths_agree_on_voter_ids_of_every_length(voters: list[bytes]) -> None:
    entries = [
        ingest_entry(b"%d-0" % number, b"cats", voter, b"1")
        for number, voter in enumerate(voters, 1)
    ]
    parsed = [parse_entry(entry_id, fields, LOOKUP) for entry_id, fields in entries]
    all_valid = all(isinstance(vote, tuple) for vote in parsed)
    assert all_valid == all(1 <= len(voter) <= MAX_VOTER_ID_CHARS for voter in voters)
    assert add_ingest_votes(VoteRows(), entries, COPY_OPTIONS) == all_valid
