"""A batch of stream entries, validated and split into votes, dead letters and lost IDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from processor.entries import Poison, Vote, option_lookup, parse_entry
from processor.stream import RawEntry
from processor.voterows import VoteRows, add_ingest_votes, copy_options
from votecontract.names import ENV_MAX_DELIVERIES


@dataclass(slots=True)
class Batch:
    """Entries read together; `ids` are all of them, acked once `votes` and `dead` commit."""

    source: str  # "pending" (own, re-read), "claimed" (from idle consumers) or "new"
    ids: list[bytes] = field(default_factory=list)
    votes: VoteRows = field(default_factory=VoteRows)
    dead: list[Poison] = field(default_factory=list)
    vanished: int = 0  # pending IDs whose entry no longer exists in the stream


@dataclass(frozen=True, slots=True)
class Validation:
    """What validating entries needs: the accepted options and the delivery limit."""

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
    """Validate entries; those delivered more than `max_deliveries` times are dead letters."""
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
    plain ingest votes none of which is over the delivery limit, else one by one."""
    limit = validation.max_deliveries
    over_limit = bool(deliveries) and any(deliveries.get(e[0], 1) > limit for e in entries)
    if over_limit or not add_ingest_votes(batch.votes, entries, validation.copy_options):
        _extend_one_by_one(batch, entries, validation, deliveries)
        return
    batch.ids.extend(map(itemgetter(0), entries))


def _extend_one_by_one(
    batch: Batch,
    entries: Sequence[RawEntry],
    validation: Validation,
    deliveries: Mapping[bytes, int],
) -> None:
    votes: list[Vote] = []
    for entry_id, fields in entries:
        batch.ids.append(entry_id)
        if fields is None:
            batch.vanished += 1
        elif deliveries.get(entry_id, 1) > validation.max_deliveries:
            delivered = deliveries[entry_id]
            limit = f"{ENV_MAX_DELIVERIES}={validation.max_deliveries}"
            reason = f"delivered {delivered} times, more than {limit}"
            batch.dead.append(Poison(entry_id, fields, reason))
        else:
            parsed = parse_entry(entry_id, fields, validation.options)
            if isinstance(parsed, Poison):
                batch.dead.append(parsed)
            else:
                votes.append(parsed)
    batch.votes.add_votes(votes)
