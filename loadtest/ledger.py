"""The client's record of a load-test run: every vote ingest answered 202, and the counts of
the other outcomes. The locustfile writes it; `loadtest.reconcile` checks it against the
pipeline's state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True, order=True)
class EntryId:
    """A Redis stream entry ID `<ms>-<seq>`; ordering is the stream's order."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, text: str) -> EntryId:
        ms, sep, seq = text.partition("-")
        if not sep or not ms.isdigit() or not seq.isdigit():
            raise ValueError(f"not a stream entry ID: {text!r}")
        return cls(int(ms), int(seq))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


@dataclass(frozen=True, slots=True)
class AcceptedVote:
    entry_id: EntryId
    voter_id: str
    option: str


@dataclass(frozen=True, slots=True)
class Ledger:
    """One run: `voter_prefix` starts every voter_id the run used (and no one else's);
    `uncertain` counts requests whose outcome the client never learned (connection errors,
    requests cut off at shutdown): ingest may have accepted them."""

    run_id: str
    voter_prefix: str
    votes: tuple[AcceptedVote, ...]
    backpressure: int = 0
    failures: int = 0
    uncertain: int = 0


def write_ledger(path: Path, ledger: Ledger) -> None:
    document = {
        "run_id": ledger.run_id,
        "voter_prefix": ledger.voter_prefix,
        "backpressure": ledger.backpressure,
        "failures": ledger.failures,
        "uncertain": ledger.uncertain,
        "votes": [[str(v.entry_id), v.voter_id, v.option] for v in ledger.votes],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")


def read_ledger(path: Path) -> Ledger:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    votes = tuple(
        AcceptedVote(EntryId.parse(entry_id), voter_id, option)
        for entry_id, voter_id, option in document["votes"]
    )
    return Ledger(
        run_id=str(document["run_id"]),
        voter_prefix=str(document["voter_prefix"]),
        votes=votes,
        backpressure=int(document["backpressure"]),
        failures=int(document["failures"]),
        uncertain=int(document["uncertain"]),
    )
