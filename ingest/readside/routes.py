"""The read side of the ingest service: results, vote status, the live results stream and the
voting page, with the resources they own (a Postgres pool and a Redis client of their own, so
reads never queue behind the vote writer's connection).

`create_app` adds `ReadSide.routes()` and runs `ReadSide.running()` in its lifespan.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ingest.readside.database import Database
from ingest.readside.events import ResultsBroadcaster, results_stream_response
from ingest.readside.page import page_response, static_files
from ingest.readside.results import ResultsService, results_response
from ingest.readside.status import VoteStatusService, vote_status_response
from ingest.redisclients import AnyRedis, command_client
from ingest.settings import IngestSettings


@dataclass(frozen=True, slots=True)
class _Services:
    results: ResultsService
    status: VoteStatusService
    broadcaster: ResultsBroadcaster


class ReadSide:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.database = Database(
            settings.database_url,
            timeout_s=settings.database_timeout_s,
            max_size=settings.database_pool_size,
        )
        self._redis: AnyRedis | None = None
        self._services: _Services | None = None

    async def start(self) -> None:
        """Open the pool (without connecting) and the Redis client; build the services."""
        settings = self.settings
        await self.database.open()
        self._redis = command_client(
            settings.redis_url,
            settings.topology,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
        )
        results = ResultsService(
            self.database,
            self._redis,
            settings.names,
            settings.options,
            max_age_s=settings.results_max_age_s,
            topology=settings.topology,
        )
        self._services = _Services(
            results=results,
            status=VoteStatusService(self.database, self._redis, settings.names, settings.topology),
            broadcaster=ResultsBroadcaster(results.current, settings.results_poll_s),
        )

    async def close(self) -> None:
        """End the live streams first, then release Postgres and Redis."""
        if self._services is not None:
            await self._services.broadcaster.close()
            await self._services.results.close()
        await self.database.close()
        if self._redis is not None:
            await self._redis.aclose()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ReadSide]:
        """`start()`, then `close()` on exit: for the app's lifespan."""
        await self.start()
        try:
            yield self
        finally:
            await self.close()

    @property
    def services(self) -> _Services:
        if self._services is None:
            raise RuntimeError("ReadSide.start() was not called (app lifespan not running)")
        return self._services

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.page, methods=["GET"], name="page"),
            Route("/results", self.results, methods=["GET"], name="results"),
            Route("/results/stream", self.results_stream, methods=["GET"], name="results_stream"),
            Route("/votes/{vote_id}", self.vote_status, methods=["GET"], name="vote_status"),
            Mount("/static", app=static_files(), name="static"),
        ]

    async def page(self, request: Request) -> Response:
        services = self.services
        return await page_response(
            request, services.results, services.status, self.settings.options
        )

    async def results(self, request: Request) -> Response:
        return await results_response(self.services.results)

    async def results_stream(self, request: Request) -> Response:
        return results_stream_response(
            self.services.broadcaster, heartbeat_s=self.settings.sse_heartbeat_s
        )

    async def vote_status(self, request: Request) -> Response:
        return await vote_status_response(self.services.status, request.path_params["vote_id"])
