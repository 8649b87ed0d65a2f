"""Benchmark: one processor Job draining a preloaded stream, against the two limits it sits
between, measured in the same run: raw COPY of the same rows into PostgreSQL, and raw
XREADGROUP + XACK of the same entries from Redis.

    .venv/bin/python -m loadtest.bench_processor [--entries 200000] [--rounds 5]
                                                 [--batch-size N] [--json PATH]

Everything is private to the run: a database `vote_bench_*` per round (dropped) and stream
keys under `bench:<random>:` on BENCH_REDIS_URL (deleted at the end). The stream is loaded
once; each round reads it through consumer groups of its own (all created at 0 before the
first round, so a Job's trim removes nothing another round still needs), in rotating order:
- the Job: `python -m processor` as a subprocess, exactly as in a pod; its rate from its own
  summary line (drain time, without interpreter start-up), its peak RSS from wait4;
- raw COPY: the same rows into an unindexed copy of vote_events, on one connection;
- raw Redis: XREADGROUP COUNT <batch size> and one XACK per batch, on one connection.
The Job's ratio is against the smaller of the two (target 0.5). Redis memory per entry is
MEMORY USAGE of the stream (samples 0) per entry, undelivered and delivered-but-pending.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import hiredis
import redis.asyncio as aioredis

from loadtest.measure import Spread
from processor.migrate import migrate
from votecontract.names import (
    ENV_BATCH_SIZE,
    ENV_DATABASE_URL,
    ENV_LOG_FORMAT,
    ENV_REDIS_URL,
    ENV_VOTE_GROUP,
    ENV_VOTE_OPTIONS,
    ENV_VOTE_STREAM,
    FIELD_ACCEPTED_MS,
    FIELD_OPTION,
    FIELD_VOTER_ID,
)

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DEFAULT_BATCH = 10_000  # the Job's BATCH_SIZE default
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


async def time_raw_copy(database_url: str, rows: list[Row]) -> float:
    """Seconds to COPY `rows` into a fresh unindexed copy of vote_events."""
    conn = await asyncpg.connect(database_url)
    columns = ("entry_ms", "entry_seq", "option", "voter_id", "accepted_at")
    try:
        await conn.execute("CREATE TABLE copy_baseline (LIKE vote_events INCLUDING DEFAULTS)")
        started = time.perf_counter()
        await conn.copy_records_to_table("copy_baseline", records=rows, columns=columns)
        spent = time.perf_counter() - started
        await conn.execute("DROP TABLE copy_baseline")
    finally:
        await conn.close()
    return spent


class RawRedis:
    """One connection speaking RESP through hiredis alone (C packing and parsing, no client
    library): the cheapest way to ask Redis, so what it measures is Redis's side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.parser = reader, writer, hiredis.Reader()

    @classmethod
    async def connect(cls, url: str) -> RawRedis:
        parts = urlsplit(url)
        conn = cls(*await asyncio.open_connection(parts.hostname, parts.port or 6379))
        if parts.password:
            await conn.call("AUTH", unquote(parts.username or "default"), unquote(parts.password))
        await conn.call("SELECT", parts.path.strip("/") or "0")
        return conn

    async def call(self, *args: str | bytes | int) -> Any:
        self.writer.write(hiredis.pack_command(args))  # type: ignore[arg-type]  # stub: 1-tuple
        while (reply := self.parser.gets()) is False:
            chunk = await self.reader.read(1 << 20)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.parser.feed(chunk)
        if isinstance(reply, hiredis.ReplyError):
            raise reply
        return reply

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def time_raw_redis(stream: str, group: str, batch: int, entries: int) -> tuple[float, float]:
    """Seconds to XREADGROUP every entry (COUNT `batch`) and XACK each batch; and the bytes
    the first batch's pending entries added to the stream (MEMORY USAGE)."""
    redis = await RawRedis.connect(REDIS_URL)
    try:
        before = await redis.call("MEMORY", "USAGE", stream, "SAMPLES", 0)
        pending_bytes, read, paused = 0.0, 0, 0.0
        started = time.perf_counter()
        while True:
            reply = await redis.call("XREADGROUP", "GROUP", group, "raw", "COUNT", batch,
                                     "STREAMS", stream, ">")  # fmt: skip
            batch_entries = reply[0][1] if reply else []
            if not batch_entries:
                break
            if not read:
                pause = time.perf_counter()
                after = await redis.call("MEMORY", "USAGE", stream, "SAMPLES", 0)
                pending_bytes = (after - before) / len(batch_entries)
                paused = time.perf_counter() - pause
            await redis.call("XACK", stream, group, *[entry[0] for entry in batch_entries])
            read += len(batch_entries)
        spent = time.perf_counter() - started - paused
    finally:
        await redis.close()
    if read != entries:
        sys.exit(f"raw XREADGROUP read {read} entries of {entries}")
    return spent, pending_bytes


def run_job(
    database_url: str, stream: str, group: str, batch_size: int | None
) -> tuple[dict[str, object], float, Any]:
    """Run `python -m processor`; return its summary line, wall seconds and resource usage."""
    env = dict(os.environ)
    env.update({ENV_REDIS_URL: REDIS_URL, ENV_DATABASE_URL: database_url, ENV_VOTE_STREAM: stream,
                ENV_VOTE_GROUP: group, ENV_VOTE_OPTIONS: ",".join(OPTIONS),
                ENV_LOG_FORMAT: "json"})  # fmt: skip
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


@dataclass
class Rates:
    """Per round: rows or entries per second of each contender."""

    job: list[float] = field(default_factory=list)
    copy: list[float] = field(default_factory=list)
    redis: list[float] = field(default_factory=list)
    job_peak_rss_mib: list[float] = field(default_factory=list)
    job_cpu_s: list[float] = field(default_factory=list)
    job_batches: list[int] = field(default_factory=list)

    def job_ratios(self) -> list[float]:
        """The Job against the smaller limit of the same round."""
        return [j / min(c, r) for j, c, r in zip(self.job, self.copy, self.redis, strict=True)]


@dataclass(frozen=True)
class Setup:
    tag: str
    stream: str
    entries: int
    batch: int
    rows: list[Row]


async def run_round(number: int, setup: Setup, redis: aioredis.Redis, rates: Rates) -> float:
    """One round in a fresh database; returns the pending-entry bytes the raw read saw."""
    database = f"vote_bench_{setup.tag}_{number}"
    database_url = ADMIN_URL.rpartition("/")[0] + "/" + database
    await admin(f'CREATE DATABASE "{database}"')
    pending = 0.0
    try:
        await migrate(database_url)

        async def copy() -> None:
            rates.copy.append(setup.entries / await time_raw_copy(database_url, setup.rows))

        async def raw() -> None:
            nonlocal pending
            spent, pending = await time_raw_redis(
                setup.stream, f"raw-{number}", setup.batch, setup.entries
            )
            rates.redis.append(setup.entries / spent)

        async def job() -> None:
            summary, _, usage = await asyncio.to_thread(
                run_job, database_url, setup.stream, f"job-{number}", setup.batch
            )
            await check_totals(database_url, setup.entries)
            rates.job.append(setup.entries / float(summary["duration_s"]))  # type: ignore[arg-type]
            rates.job_peak_rss_mib.append(usage.ru_maxrss / 1024)
            rates.job_cpu_s.append(usage.ru_utime + usage.ru_stime)
            rates.job_batches.append(int(summary["batches"]))  # type: ignore[call-overload]

        steps = [copy, raw, job]
        for step in steps[number % 3 :] + steps[: number % 3]:
            await step()
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return pending


async def main(args: argparse.Namespace) -> Rates:
    tag = uuid.uuid4().hex[:10]
    stream = f"bench:{tag}:votes"
    redis = aioredis.Redis.from_url(REDIS_URL)
    rates = Rates()
    try:
        rows = await preload(redis, stream, args.entries, args.voters)
        entry_bytes = (await redis.memory_usage(stream, samples=0) or 0) / args.entries
        for number in range(args.rounds):  # every group before any Job trims
            for group in (f"raw-{number}", f"job-{number}"):
                await redis.xgroup_create(stream, group, id="0")
        setup = Setup(tag, stream, args.entries, args.batch_size or DEFAULT_BATCH, rows)
        pending_bytes = 0.0
        for number in range(args.rounds):
            pending_bytes = await run_round(number, setup, redis, rates)
            print(f"round {number + 1}: Job {rates.job[-1]:,.0f} votes/s, raw COPY"
                  f" {rates.copy[-1]:,.0f} rows/s, raw XREADGROUP+XACK"
                  f" {rates.redis[-1]:,.0f} entries/s", flush=True)  # fmt: skip
    finally:
        await redis.delete(stream, f"{stream}:dead")
        await redis.aclose()
    report(args, rates, entry_bytes, pending_bytes)
    return rates


def report(args: argparse.Namespace, rates: Rates, entry_bytes: float, pending: float) -> None:
    job, copy, raw = Spread.of(rates.job), Spread.of(rates.copy), Spread.of(rates.redis)
    by_copy = Spread.of([j / c for j, c in zip(rates.job, rates.copy, strict=True)])
    by_redis = Spread.of([j / r for j, r in zip(rates.job, rates.redis, strict=True)])
    batch = args.batch_size or DEFAULT_BATCH
    print(f"entries                 {args.entries}  ({args.rounds} rounds, median (range))")
    print(f"raw COPY                {copy.text()} rows/s")
    print(f"raw XREADGROUP+XACK     {raw.text()} entries/s  (COUNT {batch})")
    print(f"processor Job           {job.text()} votes/s  (drain time)")
    print(f"ratio Job / raw COPY    {by_copy.text('.3f')}")
    print(f"ratio Job / raw Redis   {by_redis.text('.3f')}")
    print(f"ratio Job / smaller     {Spread.of(rates.job_ratios()).text('.3f')}    (target >= 0.5)")
    print(f"Job batches             {rates.job_batches[-1]}")
    print(f"Job peak RSS            {max(rates.job_peak_rss_mib):.1f} MiB")
    print(f"Job CPU (user+sys)      {Spread.of(rates.job_cpu_s).text('.2f')} s")
    print(
        f"Redis per entry         {entry_bytes:.0f} B waiting, {pending:.0f} B more while pending"
    )
    if args.json:
        text = json.dumps(document(rates, args.entries, entry_bytes, pending), indent=1)
        args.json.write_text(text, encoding="utf-8")


def document(rates: Rates, entries: int, entry_bytes: float, pending: float) -> dict[str, Any]:
    """The figures as JSON for the report (loadtest/report.py)."""
    return asdict(rates) | {"entries": entries, "redis_entry_bytes": entry_bytes,
                            "redis_pending_entry_bytes": pending}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--voters", type=int, default=50_000, help="distinct voters (they repeat)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: the Job's BATCH_SIZE"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
