"""`python -m loadtest.report` (what `make report` runs): the ingest benchmark, the processor
benchmark and an end-to-end load test, written up in loadtest/results/REPORT.md with PNG
charts of throughput and latency over time.

The benchmarks print text; their whole output goes into the report and the figures are read
from it by pattern (a figure whose line changed shows as n/a, the output still tells it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from loadtest import charts
from loadtest.ledger import read_ledger
from loadtest.local_pipeline import REPO_ROOT, LocalPipeline
from loadtest.machine import describe_machine
from loadtest.run import LoadTest, own_pipeline_config, run_against
from loadtest.timeline import Timeline, run_timeline
from votecontract.environment import process_environ

RESULTS = REPO_ROOT / "loadtest" / "results"
NUMBER = r"([\d,]+(?:\.\d+)?)"
INGEST_FIGURES = {
    "bare_rps": rf"^\s*bare:\s+{NUMBER} req/s",
    "bare_p99_ms": rf"^\s*bare:.*p99\s+{NUMBER} ms",
    "ingest_rps": rf"^\s*ingest:\s+{NUMBER} req/s",
    "ingest_p50_ms": rf"^\s*ingest:.*p50\s+{NUMBER} ms",
    "ingest_p99_ms": rf"^\s*ingest:.*p99\s+{NUMBER} ms",
    "ratio": rf"^ingest/bare:\s+{NUMBER}x",
}
PROCESSOR_FIGURES = {
    "entries": rf"^entries\s+{NUMBER}",
    "copy_rows_s": rf"^raw COPY\s+{NUMBER} rows/s",
    "job_votes_s": rf"^processor Job\s+{NUMBER} votes/s",
    "ratio": rf"^ratio Job / raw COPY\s+{NUMBER}",
    "peak_rss_mib": rf"^Job peak RSS\s+{NUMBER} MiB",
}


@dataclass(frozen=True, slots=True)
class BenchRun:
    command: list[str]
    output: str
    returncode: int
    figures: dict[str, float] = field(default_factory=dict)

    def figure(self, name: str, fmt: str = ",.0f") -> str:
        value = self.figures.get(name)
        return "n/a" if value is None else format(value, fmt)


def read_figures(output: str, patterns: dict[str, str]) -> dict[str, float]:
    figures = {}
    for name, pattern in patterns.items():
        found = re.search(pattern, output, re.MULTILINE)
        if found:
            figures[name] = float(found.group(1).replace(",", ""))
    return figures


def run_bench(module: str, args: list[str], patterns: dict[str, str]) -> BenchRun:
    command = [sys.executable, "-m", module, *args]
    print(f"\n=== python {' '.join(command[1:])}", flush=True)
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=1800
    )
    output = (done.stdout + done.stderr).strip()
    print(output, flush=True)
    return BenchRun(
        ["python", *command[1:]], output, done.returncode, read_figures(output, patterns)
    )


@dataclass(frozen=True, slots=True)
class EndToEnd:
    test: LoadTest
    exit_code: int
    summary: dict[str, Any]
    timeline: Timeline


async def read_timeline(database_url: str, ledger_path: Path) -> Timeline:
    ledger = read_ledger(ledger_path)
    conn = await asyncpg.connect(database_url)
    try:
        return await run_timeline(conn, ledger.votes)
    finally:
        await conn.close()


def run_end_to_end(test: LoadTest, workdir: Path, polling_interval_s: float) -> EndToEnd:
    config = own_pipeline_config(process_environ(), polling_interval_s)
    pipeline = LocalPipeline(config, workdir, log_to=workdir / "pipeline.log")
    print(f"\n=== end to end: pipeline logs in {workdir / 'pipeline.log'}", flush=True)
    code = run_against(test, pipeline, "")
    summary = json.loads(test.summary_json.read_text(encoding="utf-8"))
    ledger_path = next(workdir.glob("vote-ledger-*.json"))
    timeline = asyncio.run(read_timeline(config.database_url, ledger_path))
    return EndToEnd(test, code, summary, timeline)


def ratio_row(name: str, figure: str, baseline: str, ratio: str) -> str:
    return f"| {name} | {figure} | {baseline} | {ratio} |"


def summary_table(ingest: BenchRun, processor: BenchRun, e2e: EndToEnd) -> list[str]:
    s, lat = e2e.summary, e2e.summary["latency"]
    accepted_s, recorded_s = rates(e2e.timeline)
    keeps_up = f"{recorded_s / accepted_s:.2f}x" if accepted_s else "n/a"
    return [
        "| benchmark | figure | baseline measured in the same run | ratio |",
        "| --- | --- | --- | --- |",
        ratio_row(
            "ingest `POST /vote`",
            f"{ingest.figure('ingest_rps')} req/s, p99 {ingest.figure('ingest_p99_ms', '.2f')} ms",
            f"bare Starlette endpoint {ingest.figure('bare_rps')} req/s",
            f"{ingest.figure('ratio', '.2f')}x",
        ),
        ratio_row(
            "processor, one Job draining",
            f"{processor.figure('job_votes_s')} votes/s"
            f" (peak RSS {processor.figure('peak_rss_mib', '.0f')} MiB)",
            f"raw COPY of the same rows {processor.figure('copy_rows_s')} rows/s",
            f"{processor.figure('ratio', '.3f')}x",
        ),
        ratio_row(
            "end to end (locust → ingest → runner Jobs → PostgreSQL)",
            f"{recorded_s:,.0f} votes/s recorded, e2e p99 {lat['p99_ms']:,.0f} ms",
            f"{accepted_s:,.0f} votes/s accepted by ingest",
            keeps_up,
        ),
        "",
        f"End to end: {s['accepted']} votes accepted, {s['recorded']} recorded,"
        f" {s['backpressure']} answered 503 (backpressure, retried), {s['failures']} failed;"
        f" reconciliation {'passed' if s['ok'] else 'FAILED'}. Latency from acceptance to"
        f" recording: p50 {lat['p50_ms']:,.0f} ms, p95 {lat['p95_ms']:,.0f} ms,"
        f" p99 {lat['p99_ms']:,.0f} ms, max {lat['max_ms']:,.0f} ms.",
    ]


def rates(timeline: Timeline) -> tuple[float, float]:
    """Votes/s accepted over the seconds votes were accepted in, and recorded over the
    seconds from the first acceptance to the last recording (so a lagging pipeline shows)."""

    def rate(series: list[int]) -> float:
        active = [i for i, count in enumerate(series) if count]
        return sum(series) / (active[-1] + 1) if active else 0.0

    return rate(timeline.accepted), rate(timeline.recorded)


def render(machine: dict[str, str], ingest: BenchRun, processor: BenchRun, e2e: EndToEnd) -> str:
    test = e2e.test
    lines = [
        "# Benchmark report",
        "",
        f"Generated by `make report` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
        " Absolute figures depend on the machine and on what else runs on it; the ratios"
        " against baselines measured in the same run are what to compare between runs.",
        "",
        "## Summary",
        "",
        *summary_table(ingest, processor, e2e),
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {key} | {value} |" for key, value in machine.items()),
        "",
        "## End to end",
        "",
        f"`python -m loadtest.run --start --users {test.users} --spawn-rate {test.spawn_rate:g}"
        f" --duration {test.duration}`: locust voters (four-step ramp to {test.users} users)"
        " against ingest and the local KEDA runner on a stream and database of their own;"
        " recorded_at is the processor transaction's time.",
        "",
        "![throughput over time](throughput.png)",
        "",
        "![latency over time](latency.png)",
        "",
        "## Raw output",
    ]
    for title, bench in (("Ingest benchmark", ingest), ("Processor benchmark", processor)):
        lines += ["", f"### {title}: `{' '.join(bench.command)}`", "", "```", bench.output, "```"]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.report", description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--spawn-rate", type=float, default=50.0)
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--polling-interval", type=float, default=1.0, help="runner poll, s")
    parser.add_argument("--ingest-seconds", type=int, default=10, help="per bench round")
    parser.add_argument("--processor-entries", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    ingest = run_bench(
        "loadtest.bench_ingest", ["--duration", str(args.ingest_seconds)], INGEST_FIGURES
    )
    processor = run_bench(
        "loadtest.bench_processor", ["--entries", str(args.processor_entries)], PROCESSOR_FIGURES
    )
    workdir = Path(tempfile.mkdtemp(prefix="vote-report-"))
    test = LoadTest(
        args.users, args.spawn_rate, args.duration, workdir / "summary.json",
        ("--ledger-dir", str(workdir)),
    )  # fmt: skip
    e2e = run_end_to_end(test, workdir, args.polling_interval)
    config = own_pipeline_config(process_environ(), None)
    machine = describe_machine(config.redis_url, config.database_url)
    charts.throughput_chart(e2e.timeline, args.out / "throughput.png")
    charts.latency_chart(e2e.timeline, args.out / "latency.png")
    (args.out / "REPORT.md").write_text(render(machine, ingest, processor, e2e), encoding="utf-8")
    print(f"\nreport: {args.out / 'REPORT.md'}")
    failed = ingest.returncode or processor.returncode or e2e.exit_code
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
