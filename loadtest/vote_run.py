"""The state one load-test process shares across its simulated voters: who votes, for what,
and the ledger of what ingest accepted. Plain Python, so it is unit-testable without locust."""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, field

from loadtest.ledger import AcceptedVote, EntryId, Ledger


def parse_weights(text: str, options: tuple[str, ...]) -> tuple[int, ...]:
    """`"5,3,1"` for three options; empty means "the first option most popular"."""
    if not text.strip():
        return tuple(range(len(options), 0, -1))
    try:
        weights = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"option weights must be integers, got {text!r}") from None
    if len(weights) != len(options) or min(weights) < 1:
        raise ValueError(f"need {len(options)} weights >= 1 for {options}, got {text!r}")
    return weights


@dataclass(slots=True)
class VoteRun:
    options: tuple[str, ...]
    weights: tuple[int, ...]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    think_time_s: tuple[float, float] = (0.05, 0.5)
    steps_duration_s: float | None = None  # the staircase's length when --min-votes moved run-time
    votes: list[AcceptedVote] = field(default_factory=list)
    backpressure: int = 0
    failures: int = 0
    uncertain: int = 0
    in_flight: int = 0
    _voter_numbers: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def voter_prefix(self) -> str:
        """Voter IDs of this run, and no one else's: `lt-<run_id>-<n>` (ingest's allowed form)."""
        return f"lt-{self.run_id}-"

    def new_voter_id(self) -> str:
        return f"{self.voter_prefix}{next(self._voter_numbers)}"

    def pick_option(self, rng: random.Random, instead_of: str | None = None) -> str:
        """A weighted choice; a voter changing their mind picks another option."""
        pairs = [(o, w) for o, w in zip(self.options, self.weights, strict=True) if o != instead_of]
        if not pairs:
            return self.options[0]
        options, weights = zip(*pairs, strict=True)
        choice: str = rng.choices(options, weights)[0]
        return choice

    def record_accepted(self, entry_id: str, voter_id: str, option: str) -> None:
        self.votes.append(AcceptedVote(EntryId.parse(entry_id), voter_id, option))

    def ledger(self) -> Ledger:
        """Requests still in flight (cut off at shutdown) count as unknown outcomes."""
        return Ledger(
            run_id=self.run_id,
            voter_prefix=self.voter_prefix,
            votes=tuple(self.votes),
            backpressure=self.backpressure,
            failures=self.failures,
            uncertain=self.uncertain + self.in_flight,
        )


def stepped_users(elapsed_s: float, duration_s: float, users: int, steps: int) -> int | None:
    """Users for a staircase up to `users` in `steps` equal steps over `duration_s`;
    None once the duration is over."""
    if elapsed_s >= duration_s:
        return None
    step = min(int(elapsed_s * steps / duration_s), steps - 1)
    return max(1, -(-users * (step + 1) // steps))


def holds_for_votes(accepted: int, min_votes: int, held_s: float, within_s: float) -> bool:
    """After the staircase: keep its top step while fewer than `min_votes` were accepted,
    for at most `within_s` more seconds. A run bounded by votes, not by the clock alone,
    gives a reconciliation something to check however slow the machine is."""
    return accepted < min_votes and held_s < within_s
