"""`python -m loadtest.run` (what `make loadtest` runs): a headless locust run against the
local pipeline, reconciled at the end.

The pipeline: `--ingest-url` when given; else a `make dev` instance answering on
http://127.0.0.1:8000; else one started for the run (migrations, ingest on a free port, the
local KEDA runner) on stream `loadtest:votes` and database `votes_loadtest` unless VOTE_STREAM
or DATABASE_URL say otherwise, stopped afterwards. Reconciliation reads REDIS_URL,
DATABASE_URL, VOTE_STREAM and VOTE_GROUP: they must name what the reused pipeline writes to.
Exit status: locust's (non-zero on failed requests or a failed reconciliation).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from loadtest.local_pipeline import REPO_ROOT, LocalPipeline, PipelineConfig, http_ok
from loadtest.reconcile import ReconcileSettings
from votecontract.environment import Environ, process_environ
from votecontract.names import ENV_DATABASE_URL, ENV_VOTE_STREAM, StreamNames

DEV_INGEST_URL = "http://127.0.0.1:8000"
OWN_STREAM = "loadtest:votes"
OWN_DATABASE = "votes_loadtest"
LOCUST_CONF = REPO_ROOT / "loadtest" / "locust.conf"


@dataclass(frozen=True, slots=True)
class LoadTest:
    users: int
    spawn_rate: float
    duration: str
    summary_json: Path
    locust_args: tuple[str, ...] = ()


def with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


async def ensure_database(url: str) -> None:
    """Create the run's database when missing (never drops one)."""
    name = url.rpartition("/")[2].partition("?")[0]
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def own_pipeline_config(
    env: Environ, polling_interval_s: float | None, sweep_interval_s: float | None = None
) -> PipelineConfig:
    settings = ReconcileSettings.from_environ(env)
    stream = settings.names.stream if ENV_VOTE_STREAM in env else OWN_STREAM
    database_url = settings.database_url
    if ENV_DATABASE_URL not in env:
        database_url = with_database(database_url, OWN_DATABASE)
    return PipelineConfig(
        redis_url=settings.redis_url,
        database_url=database_url,
        names=StreamNames(stream=stream, group=settings.names.group),
        polling_interval_s=polling_interval_s,
        sweep_interval_s=sweep_interval_s,
    )


def run_locust(test: LoadTest, host: str, env: dict[str, str]) -> int:
    args = [sys.executable, "-m", "locust", "--config", str(LOCUST_CONF), "--headless"]
    args += ["-u", str(test.users), "-r", str(test.spawn_rate), "-t", test.duration]
    args += ["--host", host, "--reconcile-json", str(test.summary_json), *test.locust_args]
    print(
        f"locust: {test.users} users, spawn rate {test.spawn_rate}/s, {test.duration}", flush=True
    )
    return subprocess.run(args, env=env, cwd=REPO_ROOT, check=False).returncode


def print_summary(summary: dict[str, Any], code: int) -> None:
    latency = summary["latency"]
    print("\nload test summary")
    print(f"  votes accepted (202)   {summary['accepted']}")
    print(f"  votes recorded         {summary['recorded']}")
    print(f"  503 backpressure       {summary['backpressure']}")
    print(f"  failed requests        {summary['failures']}")
    print(
        f"  e2e latency ms         p50 {latency['p50_ms']:.0f}  p95 {latency['p95_ms']:.0f}"
        f"  p99 {latency['p99_ms']:.0f}"
    )
    print(f"  reconciliation         {'OK' if summary['ok'] else 'FAILED'}")
    print(f"  exit status            {code}")


def run_against(test: LoadTest, pipeline: LocalPipeline | None, ingest_url: str) -> int:
    """Run locust on a started pipeline (stopping it after) or on `ingest_url`."""
    env = dict(os.environ) if pipeline is None else pipeline.env()
    try:
        if pipeline is not None:
            asyncio.run(ensure_database(pipeline.config.database_url))
            pipeline.start()
            ingest_url = pipeline.ingest_url
        code = run_locust(test, ingest_url, env)
    finally:
        if pipeline is not None:
            print("stopping the pipeline started for this run", flush=True)
            pipeline.stop()
    if test.summary_json.exists():
        print_summary(json.loads(test.summary_json.read_text(encoding="utf-8")), code)
    return code


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--duration", default="60s", help="locust run time, e.g. 60s, 2m")
    parser.add_argument("--ingest-url", help="reuse the pipeline behind this ingest URL")
    parser.add_argument("--start", action="store_true", help="always start a pipeline")
    parser.add_argument("--polling-interval", type=float, help="runner poll, overrides keda/")
    parser.add_argument(
        "--sweep-interval", type=float, help="also run the sweeper Job every this many seconds"
    )
    parser.add_argument("--summary-json", type=Path, help="write the reconciled summary here")
    parser.add_argument("--log", type=Path, help="pipeline logs (default: a temp file)")
    parser.add_argument("locust_args", nargs="*", help="after --: passed to locust")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="vote-loadtest-"))
    summary = args.summary_json or workdir / "summary.json"
    test = LoadTest(args.users, args.spawn_rate, args.duration, summary, tuple(args.locust_args))
    if args.ingest_url or (not args.start and http_ok(f"{DEV_INGEST_URL}/readyz")):
        url = args.ingest_url or DEV_INGEST_URL
        print(f"reusing the pipeline behind {url}", flush=True)
        return run_against(test, None, url)
    config = own_pipeline_config(process_environ(), args.polling_interval, args.sweep_interval)
    log = args.log or workdir / "pipeline.log"
    print(f"pipeline logs: {log}", flush=True)
    return run_against(test, LocalPipeline(config, workdir, log_to=log), "")


if __name__ == "__main__":
    sys.exit(main())
