"""`GET /votes/{id}`: what became of an accepted vote.

Postgres is asked first (recorded or dead-lettered is final), then the stream (pending), then
Postgres again: a Job may record the entry and trim it from the stream between the first two
reads, and without the third an accepted vote would briefly look never accepted (404).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from redis.exceptions import RedisError
from starlette.responses import JSONResponse, Response

from ingest.readside.database import Database, DatabaseUnavailableError
from ingest.readside.results import unavailable
from ingest.redisclients import AnyRedis
from votecontract.entry import accepted_instant, fits_bigint, parse_accepted_ms
from votecontract.names import FIELD_ACCEPTED_MS, FIELD_OPTION, StreamNames
from votecontract.topology import RedisTopology

VOTE_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
U64_MAX = 2**64 - 1  # each part of a Redis stream ID

State = Literal["pending", "recorded", "dead_lettered"]

STATUS_QUERY = """
SELECT e.option, e.recorded_at,
       -- NULL past Python's datetime (asyncpg would raise): the processor records such values
       -- no more, but rows it recorded before may hold them.
       CASE WHEN e.accepted_at < timestamptz '10000-01-01 00:00:00+00' THEN e.accepted_at
       END AS accepted_at,
       coalesce(b.entry_ms = e.entry_ms AND b.entry_seq = e.entry_seq, false) AS is_current,
       d.reason, d.dead_at
FROM (SELECT $1::bigint AS ms, $2::bigint AS seq) AS k
LEFT JOIN vote_events AS e ON e.entry_ms = k.ms AND e.entry_seq = k.seq
LEFT JOIN ballots AS b ON b.voter_id = e.voter_id
LEFT JOIN dead_letters AS d ON d.entry_ms = k.ms AND d.entry_seq = k.seq
"""

# An ID beyond bigint is never recorded, only dead-lettered (dead_letters keys it as numeric).
DEAD_LETTER_QUERY = """
SELECT reason, dead_at FROM dead_letters WHERE entry_ms = $1::numeric AND entry_seq = $2::numeric
"""


class InvalidVoteIdError(ValueError):
    """Not a stream entry ID `<ms>-<seq>` within range."""


def parse_vote_id(raw: str) -> tuple[int, int] | None:
    """The ID's two parts; None for a well-formed ID beyond what a Redis stream ID can be."""
    match = VOTE_ID.fullmatch(raw)
    if match is None:
        raise InvalidVoteIdError(
            "vote id must look like <milliseconds>-<sequence>, e.g. 1700000000000-0"
        )
    ms, seq = int(match[1]), int(match[2])
    if ms > U64_MAX or seq > U64_MAX:
        return None
    return ms, seq


@dataclass(frozen=True, slots=True)
class VoteStatus:
    id: str
    state: State
    option: str | None = None
    accepted_at: datetime | None = None
    recorded_at: datetime | None = None
    ballot: Literal["current", "superseded"] | None = None
    reason: str | None = None
    dead_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """Only the fields this state has; times in ISO 8601 UTC."""
        fields: dict[str, Any] = {"id": self.id, "state": self.state}
        for name in ("option", "accepted_at", "recorded_at", "ballot", "reason", "dead_at"):
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.astimezone(UTC).isoformat(timespec="milliseconds")
            if value is not None:
                fields[name] = value
        return fields


class VoteStatusService:
    def __init__(
        self,
        database: Database,
        redis: AnyRedis,
        names: StreamNames,
        topology: RedisTopology | None = None,
    ) -> None:
        self._database = database
        self._redis = redis
        self._names = names
        self._topology = topology or RedisTopology()
        self._shards = self._topology.streams(names)

    async def lookup(self, vote_id: str) -> VoteStatus | None:
        """None when the ID was never accepted. Raises InvalidVoteIdError, DatabaseUnavailableError,
        RedisError."""
        parts = parse_vote_id(vote_id)
        if parts is None:
            return None
        ms, seq = parts
        status = await self._from_database(vote_id, ms, seq)
        if status is None:
            status = await self._from_stream(vote_id)
        if status is None:
            status = await self._from_database(vote_id, ms, seq)
        return status

    async def _from_database(self, vote_id: str, ms: int, seq: int) -> VoteStatus | None:
        if not fits_bigint(vote_id):
            row = await self._database.fetchrow(DEAD_LETTER_QUERY, str(ms), str(seq))
            return None if row is None else self._dead_lettered(vote_id, row)
        row = await self._database.fetchrow(STATUS_QUERY, ms, seq)
        if row is None:
            return None
        if row["recorded_at"] is not None:
            return VoteStatus(
                id=vote_id,
                state="recorded",
                option=row["option"],
                accepted_at=row["accepted_at"],
                recorded_at=row["recorded_at"],
                ballot="current" if row["is_current"] else "superseded",
            )
        if row["reason"] is not None:
            return self._dead_lettered(vote_id, row)
        return None

    @staticmethod
    def _dead_lettered(vote_id: str, row: asyncpg.Record) -> VoteStatus:
        return VoteStatus(
            id=vote_id, state="dead_lettered", reason=row["reason"], dead_at=row["dead_at"]
        )

    async def _from_stream(self, vote_id: str) -> VoteStatus | None:
        """Only the shard the ID names can hold it (votecontract/topology.py)."""
        ms = int(vote_id.partition("-")[0])
        stream = self._shards[self._topology.shard_of_entry(ms)].stream
        entries = await self._redis.xrange(stream, min=vote_id, max=vote_id, count=1)
        if not entries:
            return None
        fields = {_text(key): value for key, value in (entries[0][1] or {}).items()}
        option = fields.get(FIELD_OPTION)
        return VoteStatus(
            id=vote_id,
            state="pending",
            option=None if option is None else _text(option),
            accepted_at=accepted_at_of(fields.get(FIELD_ACCEPTED_MS)),
        )


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def accepted_at_of(raw: bytes | str | None) -> datetime | None:
    """The instant of a pending entry's `accepted_ms`, by the processor's rule; None for a
    value the processor refuses (the entry will be dead-lettered)."""
    if raw is None:
        return None
    accepted_ms = parse_accepted_ms(raw if isinstance(raw, bytes) else raw.encode())
    return None if accepted_ms is None else accepted_instant(accepted_ms)


async def vote_status_response(service: VoteStatusService, vote_id: str) -> Response:
    """`GET /votes/{id}`: 200 with the state, 400 malformed ID, 404 never accepted."""
    headers = {"Cache-Control": "no-store"}
    try:
        status = await service.lookup(vote_id)
    except InvalidVoteIdError as exc:
        body = {"error": "invalid_vote_id", "detail": str(exc), "id": vote_id[:100]}
        return JSONResponse(body, 400, headers=headers)
    except (DatabaseUnavailableError, RedisError, OSError):
        return unavailable("the vote's state cannot be read right now")
    if status is None:
        body = {"error": "vote_not_found", "detail": "no vote was accepted with this id"}
        return JSONResponse({**body, "id": vote_id}, 404, headers=headers)
    return JSONResponse(status.to_json(), headers=headers)
