"""Sustained end-to-end throughput: wrk at stepped rates against ingest plus the local KEDA
runner, up to the highest rate the pipeline sustains.

    python -m loadtest.bench_sustained [--start-rate 2000] [--step-seconds 20]
                                       [--polling-interval 1] [--json PATH] [--chart PATH]

The pipeline is the production one, on a stream and database of its own (dropped at the end):
`python -m ingest` with the image's environment and `python -m processor.scaledjob
keda/scaledjob.yaml` with a short polling interval, its Jobs as subprocesses. Each step offers
one rate for `--step-seconds` (wrk, its per-connection delay re-aimed every slice so the
achieved rate meets the offered one), then waits for the backlog to drain and judges the step
(loadtest/steps.py): every vote accepted, the backlog bounded, p99 acceptance-to-recorded
within the polling interval + 1 s. Rates grow by `--factor` while steps pass, then bisect.
A sampler records the backlog (lag + pending), ingest's RSS and the largest Job RSS every
0.5 s; the chart shows offered/accepted/recorded votes per second, backlog and latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg
import psutil
import redis

from loadtest import charts, steps, wrk
from loadtest.entrypoint import DOCKERFILE, image_env
from loadtest.local_pipeline import LocalPipeline, PipelineConfig
from loadtest.measure import tree_rss_bytes
from loadtest.run import ensure_database, with_database
from votecontract.environment import process_environ
from votecontract.names import StreamNames
from votecontract.shared_env import database_url, redis_url

BODY = b'{"option": "cats", "voter_id": "sustained-voter"}'
SAMPLE_S = 0.5
MiB = 2**20


@dataclass
class Samples:
    """Every SAMPLE_S: seconds since the run started, backlog, ingest RSS, largest Job RSS."""

    seconds: list[float] = field(default_factory=list)
    backlog: list[int] = field(default_factory=list)
    ingest_rss: list[int] = field(default_factory=list)
    job_rss: list[int] = field(default_factory=list)


class Sampler(threading.Thread):
    def __init__(self, url: str, names: StreamNames, ingest_pid: int, runner_pid: int) -> None:
        super().__init__(daemon=True, name="sampler")
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.names, self.ingest_pid, self.runner_pid = names, ingest_pid, runner_pid
        self.samples = Samples()
        self.started = time.time()
        self.stopping = threading.Event()

    def backlog(self) -> int:
        for group in self.redis.xinfo_groups(self.names.stream):
            if group["name"] == self.names.group:
                return int(group.get("lag") or 0) + int(group["pending"])
        return 0

    def job_rss(self) -> int:
        sizes = []
        for job in psutil.Process(self.runner_pid).children():
            try:
                sizes.append(tree_rss_bytes(job.pid))
            except psutil.NoSuchProcess:
                continue
        return max(sizes, default=0)

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_S):
            try:
                backlog = self.backlog()
                rss, job = tree_rss_bytes(self.ingest_pid), self.job_rss()
            except (redis.RedisError, psutil.Error):
                continue
            s = self.samples
            s.seconds.append(time.time() - self.started)
            s.backlog.append(backlog)
            s.ingest_rss.append(rss)
            s.job_rss.append(job)

    def stop(self) -> Samples:
        self.stopping.set()
        self.join()
        self.redis.close()
        return self.samples


@dataclass(frozen=True, slots=True)
class Step:
    target_per_s: float
    start_s: float  # since the run started
    end_s: float
    figures: steps.StepFigures
    p50_ms: float
    verdict: str


@dataclass
class Offered:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    cores: float = 0.0


def offer(
    url: str, target: float, response_ms: float, args: argparse.Namespace
) -> tuple[Offered, float]:
    """wrk at `target` votes/s for a step, in slices, each re-aimed with the response time
    the last one implied (`response_ms` from the step before, to begin with)."""
    offered = Offered()
    remaining = args.step_seconds
    while remaining > 0:
        slice_s = min(args.slice_seconds, remaining)
        delay = steps.pacing_delay_ms(args.connections, target, response_ms)
        done = wrk.run(url, slice_s, args.connections, wrk.post_script(BODY, delay))
        fig = done.figures
        if fig.seconds:
            achieved = fig.requests / fig.seconds
            response_ms = steps.response_estimate_ms(args.connections, delay, achieved)
        offered.requests += fig.requests
        offered.errors += fig.non_2xx + fig.socket_errors
        offered.seconds += fig.seconds
        offered.cores = max(offered.cores, done.cores)
        remaining -= slice_s
    return offered, response_ms


def wait_drained(sampler: Sampler, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sampler.backlog() == 0:
            return True
        time.sleep(0.2)
    return False


async def latencies_ms(db_url: str, start: float, end: float) -> list[float]:
    """Acceptance-to-recording latencies of the votes accepted between two epoch times."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM recorded_at - accepted_at) * 1000 FROM vote_events"
            " WHERE accepted_at >= to_timestamp($1) AND accepted_at < to_timestamp($2)",
            start,
            end,
        )
    finally:
        await conn.close()
    return [float(row[0]) for row in rows]


def run_step(
    target: float, response_ms: float, pipeline: LocalPipeline, sampler: Sampler,
    args: argparse.Namespace,
) -> tuple[Step, float]:  # fmt: skip
    budget = steps.latency_budget_s(args.polling_interval)
    start = time.time()
    offered, response_ms = offer(pipeline.ingest_url + "/vote", target, response_ms, args)
    requests, errors, seconds, cores = (
        offered.requests,
        offered.errors,
        offered.seconds,
        offered.cores,
    )
    end = time.time()
    wait_drained(sampler, budget * 2 + 5)
    recorded = asyncio.run(latencies_ms(pipeline.config.database_url, start - 0.5, end + 0.5))
    missing = max(0, requests - errors - len(recorded))
    s = sampler.samples
    window = [b for t, b in zip(s.seconds, s.backlog, strict=False)
              if start - sampler.started <= t <= end - sampler.started]  # fmt: skip
    figures = steps.StepFigures(
        target_per_s=target,
        achieved_per_s=requests / seconds if seconds else 0.0,
        errors=errors,
        generator_cores=cores,
        p99_ms=steps.quantile(recorded, 0.99, missing),
        max_backlog=max(window, default=0),
    )
    step = Step(target, start - sampler.started, end - sampler.started, figures,
                steps.quantile(recorded, 0.5, missing),
                steps.judge_step(figures, args.polling_interval))  # fmt: skip
    return step, response_ms


def step_line(step: Step) -> str:
    f = step.figures
    return (f"offered {f.target_per_s:8,.0f}/s  accepted {f.achieved_per_s:8,.0f}/s"
            f"  p50 {step.p50_ms:7,.0f} ms  p99 {f.p99_ms:7,.0f} ms"
            f"  backlog max {f.max_backlog:7,}  wrk {f.generator_cores:.2f} cores"
            f"  {step.verdict}")  # fmt: skip


def search(pipeline: LocalPipeline, sampler: Sampler, args: argparse.Namespace) -> list[Step]:
    history: list[tuple[float, bool]] = []
    done: list[Step] = []
    rate: float | None = args.start_rate
    response_ms = 0.0
    while rate is not None and len(done) < args.max_steps:
        step, response_ms = run_step(rate, response_ms, pipeline, sampler, args)
        done.append(step)
        print(step_line(step), flush=True)
        if step.verdict.startswith("load generator saturated"):
            break
        history.append((rate, step.verdict == "ok"))
        if step.verdict != "ok" and not wait_drained(sampler, 120):
            print("the backlog did not drain within 120 s; stopping", flush=True)
            break
        rate = steps.next_rate(history, args.factor, args.precision)
    return done


async def per_second(db_url: str, t0: float) -> dict[str, list[float]]:
    """Votes accepted and recorded in each second since `t0`, and the p50/p99 latency of the
    votes accepted in each second."""
    conn = await asyncpg.connect(db_url)
    try:
        accepted = await conn.fetch(
            "SELECT floor(extract(epoch FROM accepted_at) - $1)::int, count(*),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY recorded_at - accepted_at),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY recorded_at - accepted_at)"
            " FROM vote_events GROUP BY 1 ORDER BY 1",
            t0,
        )
        recorded = await conn.fetch(
            "SELECT floor(extract(epoch FROM recorded_at) - $1)::int, count(*)"
            " FROM vote_events GROUP BY 1 ORDER BY 1",
            t0,
        )
    finally:
        await conn.close()
    seconds = 1 + max([r[0] for r in [*accepted, *recorded]], default=-1)
    series: dict[str, list[float]] = {
        name: [0.0] * seconds for name in ("accepted", "recorded", "p50_ms", "p99_ms")
    }
    for second, count, p50, p99 in accepted:
        series["accepted"][second] = count
        series["p50_ms"][second] = p50.total_seconds() * 1000
        series["p99_ms"][second] = p99.total_seconds() * 1000
    for second, count in recorded:
        series["recorded"][second] = count
    return series


def summary(done: list[Step], samples: Samples, args: argparse.Namespace) -> list[str]:
    passed = [s for s in done if s.verdict == "ok"]
    best = max(passed, key=lambda s: s.figures.achieved_per_s, default=None)
    budget_ms = steps.latency_budget_s(args.polling_interval) * 1000
    lines = []
    if best is None:
        lines.append("sustained: none of the offered rates")
    else:
        f = best.figures
        lines.append(f"sustained: {f.achieved_per_s:,.0f} votes/s (offered {f.target_per_s:,.0f}),"
                     f" p99 {f.p99_ms:,.0f} ms (budget {budget_ms:,.0f} ms),"
                     f" backlog max {f.max_backlog:,}")  # fmt: skip
    failed = [s for s in done if s.verdict != "ok"]
    if failed:
        first = min(failed, key=lambda s: s.target_per_s)
        lines.append(f"not sustained: {first.target_per_s:,.0f} votes/s offered: {first.verdict}")
    if samples.ingest_rss:
        lines.append(f"ingest RSS under load: max {max(samples.ingest_rss) / MiB:.1f} MiB")
    if any(samples.job_rss):
        lines.append(
            f"Job RSS (sampled every {SAMPLE_S:g} s): max {max(samples.job_rss) / MiB:.1f} MiB"
        )
    return lines


def document(
    done: list[Step], samples: Samples, series: dict[str, list[float]], lines: list[str],
    polling_interval_s: float,
) -> dict[str, object]:  # fmt: skip
    """The figures as JSON for the report (loadtest/report.py); Python's json writes and
    reads an infinite p99 as Infinity."""
    return {"steps": [asdict(s) for s in done], "samples": asdict(samples), "per_second": series,
            "summary": lines, "polling_interval_s": polling_interval_s}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start-rate", type=float, default=2000.0, help="votes/s of step 1")
    parser.add_argument("--factor", type=float, default=1.5, help="rate growth while passing")
    parser.add_argument("--precision", type=float, default=0.15, help="bisection stops here")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--slice-seconds", type=float, default=5.0, help="pacing re-aimed")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--polling-interval", type=float, default=1.0, help="runner poll, s")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--chart", type=Path, help="write the PNG chart here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk.require_wrk()
    env = process_environ()
    tag = uuid.uuid4().hex[:10]
    names = StreamNames(stream=f"bench-e2e:{tag}:votes")
    config = PipelineConfig(
        redis_url=redis_url(env),
        database_url=with_database(database_url(env), f"vote_e2e_{tag}"),
        names=names,
        polling_interval_s=args.polling_interval,
        base_env=tuple(image_env(DOCKERFILE.read_text(encoding="utf-8")).items()),
    )
    workdir = Path(tempfile.mkdtemp(prefix="vote-sustained-"))
    pipeline = LocalPipeline(config, workdir, log_to=workdir / "pipeline.log")
    print(f"sustained: stream {names.stream}, logs {workdir / 'pipeline.log'}", flush=True)
    asyncio.run(ensure_database(config.database_url))
    try:
        pipeline.start()
        ingest, runner = pipeline.processes[0].pid, pipeline.processes[1].pid
        sampler = Sampler(config.redis_url, names, ingest, runner)
        sampler.start()
        try:
            done = search(pipeline, sampler, args)
        finally:
            samples = sampler.stop()
        series = asyncio.run(per_second(config.database_url, sampler.started))
    finally:
        pipeline.stop()
        redis.Redis.from_url(config.redis_url).delete(names.stream, names.dead_letter)
        asyncio.run(drop_database(config.database_url))
    lines = summary(done, samples, args)
    print("\n".join(lines))
    if args.chart:
        spans = [(s.start_s, s.end_s, s.target_per_s) for s in done]
        budget = steps.latency_budget_s(args.polling_interval)
        charts.sustained_chart(series, samples, spans, budget, args.chart)
    if args.json:
        text = json.dumps(document(done, samples, series, lines, args.polling_interval))
        args.json.write_text(text, encoding="utf-8")
    return 0 if any(s.verdict == "ok" for s in done) else 1


async def drop_database(url: str) -> None:
    name = url.rpartition("/")[2]
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
