"""A batch of stream entries, validated and split into votes, dead letters and lost IDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ingest.names import ENV_MAX_DELIVERIES
from processor.entries import Poison, Vote, fast_vote, parse_entry
from processor.stream import RawEntry


@dataclass(slots=True)
class Batch:
    """Entries read together; `ids` are all of them, acked once `votes` and `dead` commit."""

    source: str  # "pending" (own, re-read), "claimed" (from idle consumers) or "new"
    ids: list[bytes] = field(default_factory=list)
    votes: list[Vote] = field(default_factory=list)
    dead: list[Poison] = field(default_factory=list)
    vanished: int = 0  # pending IDs whose entry no longer exists in the stream


def build_batch(
    source: str,
    entries: Sequence[RawEntry],
    options: Mapping[bytes, str],
    deliveries: Mapping[bytes, int],
    max_deliveries: int,
) -> Batch:
    """Validate entries; those delivered more than `max_deliveries` times are dead letters."""
    batch = Batch(source)
    extend_batch(batch, unique_entries(entries), options, deliveries, max_deliveries)
    return batch


def unique_entries(entries: Sequence[RawEntry]) -> Sequence[RawEntry]:
    """Each ID once (an entry re-read and also claimed may come twice)."""
    if len({entry_id for entry_id, _ in entries}) == len(entries):
        return entries
    return list(dict(entries).items())


def extend_batch(
    batch: Batch,
    entries: Sequence[RawEntry],
    options: Mapping[bytes, str],
    deliveries: Mapping[bytes, int],
    max_deliveries: int,
) -> None:
    """Validate `entries` (IDs not yet in `batch`) into `batch`."""
    append_vote = batch.votes.append
    for entry_id, fields in entries:
        batch.ids.append(entry_id)
        if fields is None:
            batch.vanished += 1
        elif deliveries and deliveries.get(entry_id, 1) > max_deliveries:
            delivered = deliveries[entry_id]
            reason = f"delivered {delivered} times, more than {ENV_MAX_DELIVERIES}={max_deliveries}"
            batch.dead.append(Poison(entry_id, fields, reason))
        elif (vote := fast_vote(entry_id, fields, options)) is not None:
            append_vote(vote)
        else:
            parsed = parse_entry(entry_id, fields, options)
            if isinstance(parsed, Poison):
                batch.dead.append(parsed)
            else:
                append_vote(parsed)
