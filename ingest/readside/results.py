"""`GET /results`: votes and share per option, the total and the backlog, from a short cache.

The figures come from the `tally` table (kept equal to the ballots per option by the
processor) and are cached for at most `max_age_s`: however many clients poll, Postgres sees
one query at a time and about two per interval (a refresh starts in the background at half
the max age, so requests never queue behind it while traffic flows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError, ResponseError
from starlette.responses import JSONResponse, Response

from ingest.readside.database import Database, DatabaseUnavailableError
from ingest.redisclients import AnyRedis
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology

logger = logging.getLogger(__name__)

TALLY_QUERY = "SELECT option, votes FROM tally"


@dataclass(frozen=True, slots=True)
class OptionResult:
    option: str
    votes: int
    share: float


@dataclass(frozen=True, slots=True)
class Results:
    """One snapshot of the figures; `backlog` is None when Redis could not be asked."""

    options: tuple[OptionResult, ...]
    total: int
    backlog: int | None
    as_of: datetime

    def same_figures(self, other: Results | None) -> bool:
        if other is None:
            return False
        return (self.options, self.total, self.backlog) == (
            other.options,
            other.total,
            other.backlog,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "options": [
                {"option": item.option, "votes": item.votes, "share": item.share}
                for item in self.options
            ],
            "total": self.total,
            "backlog": self.backlog,
            "as_of": self.as_of.isoformat(timespec="milliseconds"),
        }


def build_results(
    configured: tuple[str, ...], tally: dict[str, int], backlog: int | None, as_of: datetime
) -> Results:
    """Configured options first, in their order and with zeros; then any other option still in
    the tally (one removed from VOTE_OPTIONS keeps its votes), by name."""
    names = list(configured) + sorted(set(tally) - set(configured))
    total = sum(tally.values())
    options = tuple(
        OptionResult(
            name, tally.get(name, 0), round(tally.get(name, 0) / total, 4) if total else 0.0
        )
        for name in names
    )
    return Results(options=options, total=total, backlog=backlog, as_of=as_of)


Snapshot = tuple[float, Results, bytes]  # (clock at query start, results, JSON body)


class ResultsService:
    """The current results, never older than `max_age_s`, from Postgres and Redis at most
    about twice per `max_age_s` however many callers (one query at a time)."""

    def __init__(
        self,
        database: Database,
        redis: AnyRedis,
        names: StreamNames,
        options: tuple[str, ...],
        *,
        max_age_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        topology: RedisTopology | None = None,
    ) -> None:
        self._database = database
        self._redis = redis
        # Every shard's stream: the backlog is their sum.
        self._shards = (topology or RedisTopology()).streams(names)
        self._options = options
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._cached: Snapshot | None = None
        self._refresh: asyncio.Task[None] | None = None

    @property
    def max_age_s(self) -> float:
        return self._max_age_s

    async def current(self) -> Results:
        """Raise DatabaseUnavailableError when Postgres cannot answer."""
        return (await self._snapshot())[1]

    async def current_body(self) -> bytes:
        """The JSON body of `current()`, encoded once per snapshot."""
        return (await self._snapshot())[2]

    async def close(self) -> None:
        """Cancel a refresh in flight (app shutdown)."""
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh

    async def _snapshot(self) -> Snapshot:
        cached = self._cached
        if cached is not None:
            age = self._clock() - cached[0]
            if age < self._max_age_s:
                if age >= self._max_age_s / 2 and self._refresh is None:
                    self._refresh = asyncio.create_task(self._refresh_ahead())
                return cached
        async with self._lock:
            return await self._load(self._max_age_s)

    async def _refresh_ahead(self) -> None:
        # Refreshing in the background once a snapshot is half its max age keeps requests
        # from queueing behind the query at every expiry (a p99 spike under load).
        try:
            async with self._lock:
                await self._load(self._max_age_s / 2)
        except DatabaseUnavailableError:
            pass  # requests will retry (and answer 503) once the snapshot expires
        finally:
            self._refresh = None

    async def _load(self, max_age_s: float) -> Snapshot:
        """Query unless another caller did while this one waited for the lock."""
        cached = self._cached
        if cached is not None and self._clock() - cached[0] < max_age_s:
            return cached
        started = self._clock()  # the age counts from the query's start: never older than max
        results = await self._query()
        body = json.dumps(results.to_json(), separators=(",", ":")).encode()
        self._cached = (started, results, body)
        return self._cached

    async def _query(self) -> Results:
        backlog_task = asyncio.ensure_future(self._backlog())
        try:
            rows = await self._database.fetch(TALLY_QUERY)
        finally:
            backlog = await backlog_task
        tally = {str(row["option"]): int(row["votes"]) for row in rows}
        return build_results(self._options, tally, backlog, datetime.now(UTC))

    async def _backlog(self) -> int | None:
        try:
            return sum([await unrecorded_votes(self._redis, names) for names in self._shards])
        except (RedisError, OSError) as exc:
            logger.warning("backlog unknown: redis failed", extra={"error": repr(exc)})
            return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def unrecorded_votes(redis: AnyRedis, names: StreamNames) -> int:
    """Entries not yet delivered to the group (lag) plus delivered but not yet acked (pending).

    Where Redis reports no lag (see the notes on XDEL) or the group does not exist yet, the
    stream's length stands in: an upper bound, never an undercount.
    """
    try:
        groups: list[dict[Any, Any]] = await redis.xinfo_groups(names.stream)
    except ResponseError:
        return 0  # no stream yet: nothing was ever accepted
    for group in groups:
        fields = {_text(key): value for key, value in group.items()}
        if _text(fields["name"]) != names.group:
            continue
        lag = fields.get("lag")
        undelivered = int(lag) if lag is not None else int(await redis.xlen(names.stream))
        return undelivered + int(fields["pending"])
    return int(await redis.xlen(names.stream))


def unavailable(detail: str, retry_after_s: int = 1) -> JSONResponse:
    """503 in the API's error shape (`error` code, `detail` sentence), with a Retry-After."""
    return JSONResponse(
        {"error": "database_unavailable", "detail": detail},
        status_code=503,
        headers={"Retry-After": str(retry_after_s), "Cache-Control": "no-store"},
    )


async def results_response(service: ResultsService) -> Response:
    """`GET /results`."""
    try:
        body = await service.current_body()
    except DatabaseUnavailableError:
        return unavailable("the results cannot be read from the database right now")
    return Response(
        body,
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={max(1, int(service.max_age_s))}"},
    )
