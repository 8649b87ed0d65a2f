"""A batch of stream entries, validated and split into votes, dead letters and lost IDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from processor.entries import Poison, Vote, option_lookup, parse_entry
from processor.stream import RawEntry
from processor.voterows import VoteRows, add_ingest_votes, copy_options


@dataclass(slots=True)
class Batch:
    """Entries read together; `ids` are all of them, acked once `votes` and `dead` commit."""

    source: str  # "pending" (own, re-read), "claimed" (from idle consumers) or "new"
    ids: list[bytes] = field(default_factory=list)
    votes: VoteRows = field(default_factory=VoteRows)
    dead: list[Poison] = field(default_factory=list)
    vanished: int = 0  # pending IDs whose entry no longer exists in the stream
    over_limit: int = 0  # entries delivered more than MAX_DELIVERIES times (see extend_batch)


@dataclass(frozen=True, slots=True)
class Validation:
    """What validating entries needs: the accepted options, and the delivery count above
    which an entry is reported."""

    options: Mapping[bytes, str]
    copy_options: Mapping[bytes, bytes]
    max_deliveries: int

    @classmethod
    def of(cls, options: Sequence[str], max_deliveries: int) -> Validation:
        return cls(option_lookup(options), copy_options(options), max_deliveries)


def build_batch(
    source: str,
    entries: Sequence[RawEntry],
    validation: Validation,
    deliveries: Mapping[bytes, int],
) -> Batch:
    """Validate entries into a new batch (see extend_batch)."""
    batch = Batch(source)
    extend_batch(batch, unique_entries(entries), validation, deliveries)
    return batch


def unique_entries(entries: Sequence[RawEntry]) -> Sequence[RawEntry]:
    """Each ID once (an entry re-read and also claimed may come twice)."""
    if len(set(map(itemgetter(0), entries))) == len(entries):
        return entries
    return list({entry[0]: entry[1] for entry in entries}.items())


def extend_batch(
    batch: Batch,
    entries: Sequence[RawEntry],
    validation: Validation,
    deliveries: Mapping[bytes, int],
) -> None:
    """Validate `entries` (IDs not yet in `batch`) into `batch`: whole runs when they are
    plain ingest votes, else one by one.

    Delivery counts condemn nothing. An entry that fails validation is dead-lettered the first
    time it is validated, however often it was delivered; a valid vote is recorded however
    often it was delivered: its earlier attempts failed for reasons outside it (PostgreSQL or
    Redis down, locked or slow; a Job killed), which a dead letter would not cure. Entries over
    `max_deliveries` are only counted, for the Job's warning.
    """
    if add_ingest_votes(batch.votes, entries, validation.copy_options):
        batch.ids.extend(map(itemgetter(0), entries))
    else:
        _extend_one_by_one(batch, entries, validation)
    if deliveries:
        limit = validation.max_deliveries
        batch.over_limit += sum(deliveries.get(entry[0], 1) > limit for entry in entries)


def _extend_one_by_one(batch: Batch, entries: Sequence[RawEntry], validation: Validation) -> None:
    votes: list[Vote] = []
    for entry_id, fields in entries:
        batch.ids.append(entry_id)
        if fields is None:
            batch.vanished += 1
            continue
        parsed = parse_entry(entry_id, fields, validation.options)
        if isinstance(parsed, Poison):
            batch.dead.append(parsed)
        else:
            votes.append(parsed)
    batch.votes.add_votes(votes)
