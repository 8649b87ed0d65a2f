"""GET /results under load: with its cache, without it, and a bare endpoint, in the same run.

    python -m loadtest.bench_results [--duration 10] [--connections 64]

Three apps, one uvicorn worker each, take the same GET load from wrk in turn:
- bare: a Starlette endpoint answering a constant body of the same shape (the ceiling);
- cached: the ingest app as deployed (results cached for 1 s);
- uncached: the same with a zero cache age, so every request asks Postgres and Redis.
It prints requests/s, p50/p99 and the Postgres transactions each run caused, then the ratios
cached/bare and cached/uncached. The database (`vote_bench_<random>`, migrated and seeded) and
the Redis stream (`bench:<random>:votes`, created by the app) are its own and removed
afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ingest.app import create_app
from ingest.readside.results import build_results
from ingest.settings import IngestSettings
from loadtest.httpload import load, serve
from processor.migrate import migrate
from votecontract.names import (
    DEFAULT_VOTE_OPTIONS,
    ENV_DATABASE_URL,
    ENV_LOG_FORMAT,
    ENV_REDIS_URL,
    ENV_VOTE_STREAM,
)

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TALLY = {"cats": 123_456, "dogs": 98_765}


BARE_BODY = json.dumps(
    build_results(DEFAULT_VOTE_OPTIONS, TALLY, 0, datetime.now(UTC)).to_json(),
    separators=(",", ":"),
).encode()


async def bare_results(request: Request) -> Response:
    return Response(BARE_BODY, media_type="application/json")


def bare_app() -> Starlette:
    return Starlette(routes=[Route("/results", bare_results)])


def cached_app() -> Starlette:
    """The ingest app as deployed (settings from the environment)."""
    return create_app(IngestSettings.from_env())


def uncached_app() -> Starlette:
    return create_app(dataclasses.replace(IngestSettings.from_env(), results_max_age_s=0.0))


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    pg_transactions: int


async def _transactions(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await asyncio.sleep(1.1)  # other backends flush their counters at most once a second
        return int(
            await conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                " WHERE datname = current_database()"
            )
        )
    finally:
        await conn.close()


def measure(name: str, base: str, database_url: str, args: argparse.Namespace) -> Result:
    url = base + "/results"
    load(url, min(2.0, args.duration), args.connections)  # warm-up
    before = asyncio.run(_transactions(database_url))
    rate, p50, p99, errors = load(url, args.duration, args.connections)
    used = asyncio.run(_transactions(database_url)) - before - 1  # minus our own counter read
    return Result(name, rate, p50, p99, int(errors), max(used, 0))


@contextmanager
def bench_database() -> Iterator[str]:
    name = f"vote_bench_{uuid.uuid4().hex[:8]}"
    base = ADMIN_URL.rpartition("/")[0]
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = f"{base}/{name}"
    try:
        asyncio.run(_seed(url))
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _seed(url: str) -> None:
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany("INSERT INTO tally VALUES ($1, $2)", list(TALLY.items()))
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    stream = f"bench:{uuid.uuid4().hex[:12]}:votes"
    print(f"load: wrk, "
          f"{args.connections} connections, {args.duration:g}s per app")  # fmt: skip
    with bench_database() as database_url:
        env = {ENV_DATABASE_URL: database_url, ENV_REDIS_URL: args.redis_url,
               ENV_VOTE_STREAM: stream, ENV_LOG_FORMAT: "text"}  # fmt: skip
        results = []
        for name in ("bare", "cached", "uncached"):
            target = ["--factory", f"loadtest.bench_results:{name}_app"]
            with serve(target, env, "/results") as (base, _):
                results.append(measure(name, base, database_url, args))
    redis.Redis.from_url(args.redis_url).delete(stream)
    for r in results:
        print(
            f"{r.name:>8}: {r.requests_per_s:8.0f} req/s  p50 {r.p50_ms:6.2f} ms"
            f"  p99 {r.p99_ms:6.2f} ms  non-2xx {r.errors}"
            f"  Postgres transactions {r.pg_transactions}"
        )
    bare, cached, uncached = results
    print(
        f"cached/bare: {cached.requests_per_s / bare.requests_per_s:.2f}x req/s; "
        f"cached/uncached: {cached.requests_per_s / uncached.requests_per_s:.2f}x req/s "
        f"with {cached.pg_transactions} vs {uncached.pg_transactions} Postgres transactions"
    )
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
