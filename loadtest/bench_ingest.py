"""Ingest throughput against a bare Starlette endpoint, measured in the same run.

    python -m loadtest.bench_ingest [--duration 6] [--connections 64] [--rounds 9]
                                    [--client wrk|asyncio] [--json PATH]

The product runs as the container runs it: `python -m ingest` with the image's environment
(loadtest/entrypoint.py) on a stream of its own (`bench:<random>`, deleted afterwards). The
baseline is a bare Starlette app (`request.json()` + `JSONResponse`, no Redis) under uvicorn
with the flags `python -m ingest` gives it. wrk drives both with the same JSON body, in
interleaved rounds (bare, ingest, ingest, bare, ...), so both see the same background load.

Each run reports requests/s, p50/p99, the server's CPU time per request and the load
generator's CPU use. A round whose generator was saturated (>= 0.9 core) does not count;
without a valid majority of rounds no ratio is printed. The ratio is the median of the
round-by-round ratios, with their range. When the servers did not get most of a core (the
machine busy with other work), req/s shows how the scheduler shared the cores, not what the
servers can do: the ratio of CPU time per request is then the figure, and the req/s ratio
is printed as not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loadtest.entrypoint import Server, production_ingest
from loadtest.httpload import CLIENTS, Drive, drive, free_port, serve
from loadtest.measure import (
    Spread,
    generator_saturated,
    paired_ratios,
    server_starved,
    tree_cpu_seconds,
)
from votecontract.names import ENV_LOG_FORMAT, ENV_MAX_BACKLOG, ENV_REDIS_URL, ENV_VOTE_STREAM

BODY = b'{"option": "cats", "voter_id": "bench-voter"}'
WARM_UP_S = 2.0


async def bare_vote(request: Request) -> Response:
    payload = await request.json()
    return JSONResponse({"id": "0-0", "status_url": "/votes/0-0", "echo": len(payload)}, 202)


async def bare_health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


bare_app = Starlette(
    routes=[Route("/vote", bare_vote, methods=["POST"]), Route("/readyz", bare_health)]
)


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    load: Drive
    server_cpu_s: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / max(self.load.requests, 1) * 1e6

    @property
    def server_cores(self) -> float:
        return self.server_cpu_s / self.load.seconds if self.load.seconds else 0.0

    @property
    def saturated_generator(self) -> bool:
        return generator_saturated(self.load.generator_cores)

    def line(self) -> str:
        lo = self.load
        flag = "  GENERATOR SATURATED" if self.saturated_generator else ""
        return (f"{self.name:>6}: {lo.requests_per_s:8.0f} req/s  p50 {lo.p50_ms:6.2f} ms"
                f"  p99 {lo.p99_ms:6.2f} ms  server {self.cpu_us_per_request:5.0f} us/req"
                f" ({self.server_cores:.2f} cores)  {lo.client} {lo.generator_cores:.2f} cores"
                f"  errors {lo.errors}{flag}")  # fmt: skip


def measure(name: str, server: Server, args: argparse.Namespace) -> Run:
    cpu = tree_cpu_seconds(server.pid)
    load = drive(server.url + "/vote", args.duration, args.connections, BODY, args.client)
    return Run(name, load, tree_cpu_seconds(server.pid) - cpu)


def interleave(bare: Server, ingest: Server, args: argparse.Namespace) -> list[tuple[Run, Run]]:
    """Rounds of (bare, ingest), the order alternating so neither always goes first."""
    for server in (bare, ingest):
        drive(server.url + "/vote", WARM_UP_S, args.connections, BODY, args.client)
    rounds = []
    for number in range(1, args.rounds + 1):
        order = [("bare", bare), ("ingest", ingest)]
        runs = {name: measure(name, server, args) for name, server in order[:: (-1) ** number]}
        rounds.append((runs["bare"], runs["ingest"]))
        print(f"round {number}:\n  {runs['bare'].line()}\n  {runs['ingest'].line()}", flush=True)
    return rounds


@dataclass(frozen=True, slots=True)
class Verdict:
    valid_rounds: int
    rounds: int
    ratio: Spread | None  # ingest/bare req/s, None when refused
    cpu_ratio: Spread | None  # bare/ingest CPU per request (> 1: ingest is cheaper)
    refusal: str = ""
    server_cores: float = 1.0  # the lower of the two servers' median CPU use, in cores

    @property
    def starved(self) -> bool:
        """The servers did not get a core: req/s then measures the machine's scheduler."""
        return server_starved(self.server_cores)


def judge(rounds: list[tuple[Run, Run]]) -> Verdict:
    """Ratios over the rounds where neither run's generator saturated; refused without a
    majority of such rounds, or when a run had errors."""
    if any(run.load.errors for pair in rounds for run in pair):
        return Verdict(0, len(rounds), None, None, "a run had non-2xx answers or socket errors")
    valid = [pair for pair in rounds if not any(run.saturated_generator for run in pair)]
    if len(valid) * 2 <= len(rounds):
        return Verdict(len(valid), len(rounds), None, None,
                       "the load generator, not the server, was the bottleneck")  # fmt: skip
    bare, ingest = [p[0] for p in valid], [p[1] for p in valid]
    rps = paired_ratios(
        [r.load.requests_per_s for r in ingest], [r.load.requests_per_s for r in bare]
    )
    cpu = paired_ratios(
        [r.cpu_us_per_request for r in bare], [r.cpu_us_per_request for r in ingest]
    )
    cores = min(statistics.median(r.server_cores for r in runs) for runs in (bare, ingest))
    return Verdict(len(valid), len(rounds), Spread.of(rps), Spread.of(cpu), "", cores)


def summary_lines(rounds: list[tuple[Run, Run]], verdict: Verdict, client: str) -> list[str]:
    lines = []
    for index, name in enumerate(("bare", "ingest")):
        runs = [pair[index] for pair in rounds]
        lines.append(
            f"{name:>6}: {Spread.of([r.load.requests_per_s for r in runs]).text()} req/s"
            f"  p50 {Spread.of([r.load.p50_ms for r in runs]).text('.2f')} ms"
            f"  p99 {Spread.of([r.load.p99_ms for r in runs]).text('.2f')} ms"
            f"  server {Spread.of([r.cpu_us_per_request for r in runs]).text()} us/req"
            f"  {client} {max(r.load.generator_cores for r in runs):.2f} cores at most"
        )
    if verdict.ratio is None or verdict.cpu_ratio is None:
        lines.append(f"ingest/bare: REFUSED ({verdict.refusal})")
    elif verdict.starved:
        lines.append(
            f"ingest/bare: {verdict.cpu_ratio.text('.2f')}x by server CPU per request"
            f" (median (range) of {verdict.valid_rounds} of {verdict.rounds} rounds);"
            f" req/s {verdict.ratio.text('.2f')}x NOT COMPARABLE: the servers got"
            f" {verdict.server_cores:.2f} of a core (median), the machine was busy"
        )
    else:
        lines.append(
            f"ingest/bare: {verdict.ratio.text('.2f')}x req/s,"
            f" {verdict.cpu_ratio.text('.2f')}x by server CPU per request"
            f" (median (range) of {verdict.valid_rounds} of {verdict.rounds} rounds)"
        )
    if client != "wrk":
        lines.append(f"NOTE: load from the {client} client, not wrk: it may be the bottleneck")
    return lines


def document(
    rounds: list[tuple[Run, Run]], verdict: Verdict, client: str, connections: int
) -> dict[str, object]:
    """The figures as JSON for the report (loadtest/report.py)."""
    return {
        "client": client,
        "connections": connections,
        "rounds": [[asdict(r.load) | {"cpu_us_per_request": r.cpu_us_per_request} for r in pair]
                   for pair in rounds],
        "verdict": asdict(verdict),
    }  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=6, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=9, help="interleaved runs per app")
    parser.add_argument("--client", choices=CLIENTS, default="wrk",
                        help="asyncio only to compare clients: it saturates first")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--redis-url", default=os.environ.get(ENV_REDIS_URL, "redis://127.0.0.1:6379/0")
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stream = f"bench:{uuid.uuid4().hex[:12]}"
    # Nothing consumes the bench stream: MAX_BACKLOG only moves the threshold of the check
    # that every vote still makes; everything else is the image's configuration.
    env = {ENV_REDIS_URL: args.redis_url, ENV_VOTE_STREAM: stream, ENV_MAX_BACKLOG: str(10**12)}
    print(f"load: {args.client}, {args.connections} connections, {args.rounds} rounds x"
          f" {args.duration:g} s per app; product: python -m ingest (image env)")  # fmt: skip
    try:
        with (
            serve(["loadtest.bench_ingest:bare_app"], {ENV_LOG_FORMAT: "text"}, "/readyz") as bare,
            production_ingest(free_port(), env) as ingest,
        ):
            rounds = interleave(Server(*bare), ingest, args)
        entries = redis.Redis.from_url(args.redis_url).xlen(stream)
    finally:
        redis.Redis.from_url(args.redis_url).delete(stream)
    verdict = judge(rounds)
    print("\n".join(summary_lines(rounds, verdict, args.client)))
    accepted = sum(pair[1].load.requests for pair in rounds)
    print(f"({entries} entries written to {stream}, now deleted; {accepted} measured 202s)")
    if args.json:
        text = json.dumps(document(rounds, verdict, args.client, args.connections), indent=1)
        args.json.write_text(text, encoding="utf-8")
    return 0 if verdict.ratio is not None else 1


if __name__ == "__main__":
    sys.exit(main())
