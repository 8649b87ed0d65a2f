"""Benchmark: one processor Job draining a preloaded stream, against raw COPY of the same rows.

    .venv/bin/python -m loadtest.bench_processor [--entries 200000] [--batch-size N]

Everything is private to the run: a database `vote_bench_*` (dropped at the end) and stream keys
under `bench:<random>:` on BENCH_REDIS_URL (deleted at the end). The Job runs as a subprocess
(`python -m processor`), exactly as in a pod; its rate comes from its own summary line (drain
time, without interpreter start-up) and its peak RSS from the kernel (wait4). In the same run,
the same rows are COPYed into a scratch table with no index (median of 3): the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from processor.migrate import migrate
from votecontract.names import (
    ENV_BATCH_SIZE,
    ENV_DATABASE_URL,
    ENV_LOG_FORMAT,
    ENV_REDIS_URL,
    ENV_VOTE_OPTIONS,
    ENV_VOTE_STREAM,
    FIELD_ACCEPTED_MS,
    FIELD_OPTION,
    FIELD_VOTER_ID,
)

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
OPTIONS = ("cats", "dogs", "birds", "fish")
Row = tuple[int, int, str, str, datetime]


async def preload(redis: aioredis.Redis, stream: str, entries: int, voters: int) -> list[Row]:
    """XADD `entries` votes (voters repeat, so last-cast-wins has work); return them as rows."""
    rng = random.Random(7)
    rows: list[Row] = []
    for start in range(0, entries, 10_000):
        votes = []
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(start, min(start + 10_000, entries)):
                vote = (
                    rng.choice(OPTIONS),
                    f"voter-{rng.randrange(voters)}",
                    time.time_ns() // 1_000_000,
                )
                votes.append(vote)
                fields = {
                    FIELD_OPTION: vote[0],
                    FIELD_VOTER_ID: vote[1],
                    FIELD_ACCEPTED_MS: vote[2],
                }
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            ids = await pipe.execute()
        for entry_id, (option, voter, accepted) in zip(ids, votes, strict=True):
            ms, seq = entry_id.split(b"-")
            rows.append(
                (int(ms), int(seq), option, voter, datetime.fromtimestamp(accepted / 1000, UTC))
            )
    return rows


async def time_raw_copy(database_url: str, rows: list[Row], repeats: int = 3) -> float:
    """Median seconds of COPYing `rows` into a fresh unindexed table (one COPY is noisy)."""
    conn = await asyncpg.connect(database_url)
    columns = ("entry_ms", "entry_seq", "option", "voter_id", "accepted_at")
    timings = []
    try:
        for attempt in range(repeats):
            table = f"copy_baseline_{attempt}"
            await conn.execute(f"CREATE TABLE {table} (LIKE vote_events INCLUDING DEFAULTS)")
            started = time.perf_counter()
            await conn.copy_records_to_table(table, records=rows, columns=columns)
            timings.append(time.perf_counter() - started)
            await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()
    return statistics.median(timings)


def run_job(
    database_url: str, stream: str, batch_size: int | None
) -> tuple[dict[str, object], float, Any]:
    """Run `python -m processor`; return its summary line, wall seconds and resource usage."""
    env = dict(os.environ)
    env.update({ENV_REDIS_URL: REDIS_URL, ENV_DATABASE_URL: database_url, ENV_VOTE_STREAM: stream,
                ENV_VOTE_OPTIONS: ",".join(OPTIONS), ENV_LOG_FORMAT: "json"})  # fmt: skip
    if batch_size:
        env[ENV_BATCH_SIZE] = str(batch_size)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "processor"], env=env, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    log = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    lines = [json.loads(line) for line in log.decode().splitlines() if line.startswith("{")]
    summary = next((line for line in lines if line.get("msg") == "job finished"), None)
    if proc.returncode != 0 or summary is None:
        sys.exit(f"the Job failed (exit {proc.returncode}):\n{log.decode()[-4000:]}")
    return summary, wall, usage


async def check_totals(database_url: str, entries: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        events = await conn.fetchval("SELECT count(*) FROM vote_events")
        ballots = await conn.fetchval("SELECT count(*) FROM ballots")
        tallied = await conn.fetchval("SELECT coalesce(sum(votes), 0) FROM tally")
    finally:
        await conn.close()
    if events != entries or ballots != tallied:
        sys.exit(
            f"inconsistent result: {events} events of {entries}, {ballots} ballots, tally {tallied}"
        )


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main(entries: int, voters: int, batch_size: int | None) -> None:
    tag = uuid.uuid4().hex[:10]
    database, stream = f"vote_bench_{tag}", f"bench:{tag}:votes"
    database_url = ADMIN_URL.rpartition("/")[0] + "/" + database
    redis = aioredis.Redis.from_url(REDIS_URL)
    await admin(f'CREATE DATABASE "{database}"')
    try:
        await migrate(database_url)
        rows = await preload(redis, stream, entries, voters)
        copy_s = await time_raw_copy(database_url, rows)
        summary, wall_s, usage = await asyncio.to_thread(run_job, database_url, stream, batch_size)
        await check_totals(database_url, entries)
        report(entries, copy_s, summary, wall_s, usage)
    finally:
        await redis.delete(stream, f"{stream}:dead")
        await redis.aclose()
        await admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def report(
    entries: int, copy_s: float, summary: dict[str, object], wall_s: float, usage: Any
) -> None:
    job_s = float(summary["duration_s"])  # type: ignore[arg-type]
    copy_rate, job_rate = entries / copy_s, entries / job_s
    print(f"entries                 {entries}")
    print(f"raw COPY                {copy_rate:>10,.0f} rows/s   ({copy_s:.2f} s)")
    drain = f"({job_s:.2f} s drain, {wall_s:.2f} s wall)"
    print(f"processor Job           {job_rate:>10,.0f} votes/s  {drain}")
    print(f"ratio Job / raw COPY    {job_rate / copy_rate:>10.3f}    (acceptance >= 0.18)")
    print(f"Job batches             {summary['batches']}")
    print(f"Job peak RSS            {usage.ru_maxrss / 1024:>10.1f} MiB")
    print(f"Job CPU (user+sys)      {usage.ru_utime + usage.ru_stime:>10.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--voters", type=int, default=50_000, help="distinct voters (they repeat)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: the Job's BATCH_SIZE"
    )
    args = parser.parse_args()
    asyncio.run(main(args.entries, args.voters, args.batch_size))
