from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.ledger import AcceptedVote, EntryId, Ledger, read_ledger, write_ledger


def test_entry_ids_order_like_the_stream() -> None:
    ids = [EntryId.parse(text) for text in ("10-2", "9-5", "10-10", "10-0")]
    assert [str(i) for i in sorted(ids)] == ["9-5", "10-0", "10-2", "10-10"]


@pytest.mark.parametrize("text", ["", "12", "12-", "-3", "a-1", "1-2-3", " 1-2"])
def test_entry_id_rejects_what_is_not_a_stream_id(text: str) -> None:
    with pytest.raises(ValueError, match="not a stream entry ID"):
        EntryId.parse(text)


def test_ledger_round_trips_through_its_file(tmp_path: Path) -> None:
    ledger = Ledger(
        run_id="r1",
        voter_prefix="lt-r1-",
        votes=(
            AcceptedVote(EntryId(5, 0), "lt-r1-1", "cats"),
            AcceptedVote(EntryId(5, 1), "lt-r1-2", "dogs"),
        ),
        backpressure=3,
        failures=1,
        uncertain=1,
    )
    path = tmp_path / "runs" / "ledger.json"
    write_ledger(path, ledger)
    assert read_ledger(path) == ledger
