"""Benchmark: ingest and drain throughput with 1, 2 and 3 shards on a local Redis Cluster.

    .venv/bin/python -m loadtest.bench_shards [--shards 1,2,3] [--entries 120000]
        [--duration 10] [--connections 64] [--tls]

One run starts a cluster of 3 masters and 3 replicas on loopback (loadtest/rediscluster.py)
and a standalone redis-server with one replica as the reference (row `standalone`: today's
layout, measured the same way in the same run; the replica because every master of the
cluster has one, and replicating XREADGROUP's per-entry effects costs Redis CPU), and, per
shard count N, with each shard's slot moved onto a master of its own:
- ingest: one `python -m ingest` (one uvicorn worker, REDIS_MODE=cluster, VOTE_SHARDS=N) under
  HTTP load (wrk when installed, else an asyncio client) for --duration seconds; new voters
  every request, so votes spread over the shards;
- drain: --entries votes preloaded through ingest's own XADD script, then N Jobs
  (`python -m processor`, VOTE_SHARD=0..N-1) started together; the rate is entries over the
  time until the last one exits (and each Job's own summary rate).
With --tls a second cluster that speaks only TLS (client certificates required, the bus and
replication over TLS too; a private CA from loadtest/certs.py) runs the same rounds (rows
`cluster tls`): every client of ingest and the Jobs then talks TLS.
PostgreSQL: a database `vote_bench_*` of the run's own, dropped at the end; the cluster's
directories are removed. On a small machine every part shares the same cores: the figures
show the overhead and the ceiling there, docs/redis-topologies.md projects them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis

from ingest.shards import ADD_SCRIPT
from loadtest.certs import make_certificates
from loadtest.httpload import load, serve
from loadtest.rediscluster import ClusterNode, LocalCluster, free_port
from processor.migrate import migrate
from votecontract.names import (
    ENV_DATABASE_URL,
    ENV_LOG_FORMAT,
    ENV_MAX_BACKLOG,
    ENV_REDIS_MODE,
    ENV_REDIS_URL,
    ENV_VOTE_SHARD,
    ENV_VOTE_SHARDS,
    ENV_VOTE_STREAM,
    StreamNames,
)
from votecontract.topology import RedisTopology, voter_shard

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
VOTE_BODY = b'{"option": "cats"}'
PRELOAD_CHUNK = 2000


@dataclass(frozen=True)
class Round:
    name: str
    shards: int
    ingest_per_s: float
    ingest_p99_ms: float
    ingest_errors: int
    drained: int
    drain_per_s: float
    job_rates: tuple[float, ...]


@dataclass(frozen=True)
class Target:
    """Where a round runs: the cluster, or the standalone reference server."""

    url: str
    topology: RedisTopology
    cluster: LocalCluster | None = None


def place_shards(cluster: LocalCluster | None, streams: tuple[StreamNames, ...]) -> None:
    """Shard i's slot on master i (mod the masters): one master per shard where possible."""
    if cluster is None:
        return
    masters = cluster.master_nodes()
    for index, names in enumerate(streams):
        node_id, _ = masters[index % len(masters)]
        cluster.move_empty_slot(names.stream, node_id)


def pipeline_env(target: Target, base: StreamNames, db: str) -> dict[str, str]:
    return os.environ | {
        ENV_REDIS_URL: target.url,
        ENV_REDIS_MODE: target.topology.mode,
        ENV_VOTE_SHARDS: str(target.topology.shards),
        ENV_VOTE_STREAM: base.stream,
        ENV_DATABASE_URL: db,
        ENV_LOG_FORMAT: "json",
        ENV_MAX_BACKLOG: str(10**12),
    }


def measure_ingest(env: dict[str, str], args: argparse.Namespace) -> tuple[float, float, int]:
    with serve(["--factory", "ingest.app:create_app"], env, "/readyz") as (url, _):
        load(url + "/vote", min(2.0, args.duration), args.connections, VOTE_BODY, args.client)
        figures = load(url + "/vote", args.duration, args.connections, VOTE_BODY, args.client)
    rate, _, p99, errors = figures
    return rate, p99, errors


def preload(target: Target, base: StreamNames, count: int) -> None:
    """`count` votes from count/3 voters, each to its voter's shard via ingest's script."""
    topology = target.topology
    streams = topology.streams(base)
    client: redis.Redis | redis.RedisCluster = (
        redis.RedisCluster.from_url(target.url)  # the URL carries the TLS options
        if target.cluster is not None
        else redis.Redis.from_url(target.url)
    )
    try:
        for group in range(0, len(streams)):
            client.xgroup_create(streams[group].stream, base.group, id="0", mkstream=True)
        script = client.register_script(ADD_SCRIPT)
        for start in range(0, count, PRELOAD_CHUNK):
            pipe = client.pipeline()  # type: ignore[no-untyped-call,unused-ignore]
            for number in range(start, min(start + PRELOAD_CHUNK, count)):
                voter = f"bench-{number % max(count // 3, 1)}"
                shard = voter_shard(voter, topology.shards)
                option = ("cats", "dogs")[number % 2]
                fields = ["option", option, "voter_id", voter, "accepted_ms", "1700000000000"]
                if topology.shards == 1:
                    pipe.execute_command("XADD", streams[0].stream, "*", *fields)
                else:
                    keys = [streams[shard].stream]
                    script(keys=keys, args=[shard, topology.shards, *fields], client=pipe)
            pipe.execute()
    finally:
        client.close()


def drain(env: dict[str, str], shards: int, workdir: Path) -> tuple[float, tuple[float, ...]]:
    """Start one Job per shard at once; (wall seconds until the last exit, each Job's rate)."""
    logs = [workdir / f"job-{shard}.log" for shard in range(shards)]
    started = time.monotonic()
    jobs = []
    for shard, log in enumerate(logs):
        with log.open("wb") as sink:
            job_env = env | {ENV_VOTE_SHARD: str(shard)}
            command = [sys.executable, "-m", "processor"]
            jobs.append(subprocess.Popen(command, env=job_env, stderr=sink))
    for job in jobs:
        if job.wait(timeout=900) != 0:
            raise RuntimeError(f"a Job failed: {job.args!r}")
    wall = time.monotonic() - started
    rates = []
    for log in logs:
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("msg") == "job finished":
                rates.append(float(json.loads(line).get("entries_per_s", 0.0)))
    return wall, tuple(rates)


async def fresh_database() -> tuple[str, str]:
    name = f"vote_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = ADMIN_URL.rpartition("/")[0] + "/" + name
    await migrate(url, None)
    return name, url


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run_round(name: str, target: Target, args: argparse.Namespace, db: str) -> Round:
    shards = target.topology.shards
    tag = uuid.uuid4().hex[:8]
    written = StreamNames(f"bench:{tag}:ingest", "processors")
    drained = StreamNames(f"bench:{tag}:drain", "processors")
    for base in (written, drained):
        place_shards(target.cluster, target.topology.streams(base))
    try:
        rate, p99, errors = measure_ingest(pipeline_env(target, written, db), args)
        preload(target, drained, args.entries)
        with tempfile.TemporaryDirectory(prefix="bench-shards-") as workdir:
            wall, job_rates = drain(pipeline_env(target, drained, db), shards, Path(workdir))
    finally:
        delete_keys(target, f"*bench:{tag}:*")
    return Round(name, shards, rate, p99, errors, args.entries, args.entries / wall, job_rates)


def delete_keys(target: Target, pattern: str) -> None:
    if target.cluster is not None:
        target.cluster.delete_keys(pattern)
        return
    with redis.Redis.from_url(target.url) as client:
        for key in list(client.scan_iter(match=pattern, count=1000)):
            client.delete(key)


def print_table(rounds: list[Round], args: argparse.Namespace) -> None:
    client = "wrk" if args.client == "wrk" else "asyncio client (explicit --client asyncio)"
    print(f"\nlocal cluster 3 masters + 3 replicas; ingest: 1 worker, {client}, "
          f"{args.connections} connections, {args.duration}s; "
          f"drain: {args.entries} votes")  # fmt: skip
    print("| redis | shards | ingest votes/s | ingest p99 ms | non-2xx | drain votes/s"
          " | per Job votes/s |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rounds:
        jobs = ", ".join(f"{rate:.0f}" for rate in r.job_rates)
        print(f"| {r.name} | {r.shards} | {r.ingest_per_s:.0f} | {r.ingest_p99_ms:.1f}"
              f" | {r.ingest_errors} | {r.drain_per_s:.0f} | {jobs} |")  # fmt: skip


def reference_target(workdir: Path, stack: ExitStack) -> Target:
    """The standalone server with one replica, stopped when `stack` closes."""
    reference = ClusterNode(free_port(), workdir, cluster=False)
    stack.callback(reference.stop)
    reference.start()
    (workdir / "replica").mkdir()
    replica = ClusterNode(
        free_port(), workdir / "replica", cluster=False, replica_of=reference.port
    )
    stack.callback(replica.stop)
    replica.start()
    return Target(f"redis://127.0.0.1:{reference.port}/0", RedisTopology())


def started_clusters(workdir: Path, tls: bool, stack: ExitStack) -> list[tuple[str, LocalCluster]]:
    """The plain cluster, and with `tls` a TLS-only one, stopped when `stack` closes."""
    clusters = [("cluster", LocalCluster(workdir / "cluster"))]
    if tls:
        files = make_certificates(workdir / "tls")
        clusters.append(("cluster tls", LocalCluster(workdir / "tls-cluster", tls=files)))
    for _, cluster in clusters:
        stack.callback(cluster.stop)
        cluster.start()
    return clusters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", default="1,2,3", help="comma list of shard counts")
    parser.add_argument("--entries", type=int, default=120_000, help="votes drained per round")
    parser.add_argument("--duration", type=float, default=10.0, help="ingest seconds per round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--client", choices=("wrk", "asyncio"), default="wrk")
    parser.add_argument("--tls", action="store_true", help="also on a TLS-only cluster")
    args = parser.parse_args()
    counts = [int(part) for part in args.shards.split(",")]
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as workdir, ExitStack() as stack:
        targets = [("standalone", reference_target(Path(workdir), stack))]
        for label, cluster in started_clusters(Path(workdir), args.tls, stack):
            for shards in counts:
                topology = RedisTopology(mode="cluster", shards=shards)
                targets.append((label, Target(cluster.url, topology, cluster)))
        name, db = asyncio.run(fresh_database())
        stack.callback(lambda: asyncio.run(drop_database(name)))
        for label, target in targets:
            rounds.append(run_round(label, target, args, db))
            r = rounds[-1]
            line = f"{label} {r.shards} shard(s): ingest {r.ingest_per_s:.0f}/s"
            print(f"{line}, drain {r.drain_per_s:.0f}/s", flush=True)
    print_table(rounds, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
