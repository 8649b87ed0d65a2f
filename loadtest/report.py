"""`python -m loadtest.report` (what `make report` runs): the ingest, processor and sustained
end-to-end benchmarks and the locust load test, written up in loadtest/results/REPORT.md
with PNG charts.

Each benchmark runs as a subprocess and writes its figures as JSON (`--json`); the report
reads them from there and quotes each benchmark's printed output in full. A figure a
benchmark refused to give (a saturated load generator, errors) shows as refused, never as
a number.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from loadtest import charts
from loadtest.ledger import read_ledger
from loadtest.local_pipeline import REPO_ROOT, LocalPipeline
from loadtest.machine import describe_machine
from loadtest.measure import Spread, server_starved
from loadtest.run import LoadTest, own_pipeline_config, run_against
from loadtest.timeline import Timeline, run_timeline
from votecontract.environment import process_environ

RESULTS = REPO_ROOT / "loadtest" / "results"
MiB = 2**20


@dataclass(frozen=True, slots=True)
class BenchRun:
    command: list[str]
    output: str
    returncode: int
    figures: dict[str, Any]


def run_bench(module: str, args: list[str], json_path: Path) -> BenchRun:
    command = [sys.executable, "-m", module, *args, "--json", str(json_path)]
    print(f"\n=== python {' '.join(command[1:])}", flush=True)
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=3600
    )
    output = (done.stdout + done.stderr).strip()
    print(output, flush=True)
    figures = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {}
    return BenchRun(["python", "-m", module, *args], output, done.returncode, figures)


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
    print(f"\n=== locust end to end: pipeline logs in {workdir / 'pipeline.log'}", flush=True)
    code = run_against(test, pipeline, "")
    summary = json.loads(test.summary_json.read_text(encoding="utf-8"))
    ledger_path = next(workdir.glob("vote-ledger-*.json"))
    timeline = asyncio.run(read_timeline(config.database_url, ledger_path))
    return EndToEnd(test, code, summary, timeline)


def spread(data: dict[str, Any] | None, fmt: str = ",.0f") -> str:
    """A Spread as written by dataclasses.asdict; "refused" when absent."""
    if not data:
        return "refused"
    return Spread(data["median"], data["low"], data["high"]).text(fmt)


def ingest_row(bench: BenchRun) -> str:
    fig = bench.figures
    if not fig:
        return "| ingest `POST /vote` | n/a (the benchmark failed) | | |"
    verdict = fig["verdict"]
    bare = [pair[0] for pair in fig["rounds"]]
    ingest = [pair[1] for pair in fig["rounds"]]
    rps = Spread.of([r["requests_per_s"] for r in ingest]).text()
    cpu = Spread.of([r["cpu_us_per_request"] for r in ingest]).text()
    base = Spread.of([r["requests_per_s"] for r in bare]).text()
    base_cpu = Spread.of([r["cpu_us_per_request"] for r in bare]).text()
    ratio = spread(verdict["ratio"], ".2f")
    if verdict["ratio"] is None:
        ratio += f" ({verdict['refusal']})"
    elif server_starved(verdict["server_cores"]):
        ratio = (f"{spread(verdict['cpu_ratio'], '.2f')}x by CPU per request; req/s {ratio}x"
                 f" not comparable (the servers got {verdict['server_cores']:.2f} of a core:"
                 " the machine was busy)")  # fmt: skip
    else:
        ratio += f"x req/s; {spread(verdict['cpu_ratio'], '.2f')}x by CPU per request"
    return (f"| ingest `POST /vote` (`python -m ingest`, wrk, {fig['connections']} connections)"
            f" | {rps} req/s, {cpu} µs CPU/request | bare Starlette endpoint {base} req/s,"
            f" {base_cpu} µs CPU/request | {ratio} |")  # fmt: skip


def processor_rows(bench: BenchRun) -> list[str]:
    fig = bench.figures
    if not fig:
        return ["| processor, one Job draining | n/a (the benchmark failed) | | |"]
    job = Spread.of(fig["job"]).text()
    ratios = Spread.of([j / min(c, r) for j, c, r in zip(fig["job"], fig["copy"], fig["redis"],
                                                          strict=True)])  # fmt: skip
    return [
        f"| processor, one Job draining {fig['entries']:,} votes | {job} votes/s"
        f" | raw COPY of the same rows {Spread.of(fig['copy']).text()} rows/s;"
        f" raw XREADGROUP + XACK of the same entries {Spread.of(fig['redis']).text()}"
        f" entries/s | {ratios.text('.2f')}x the smaller (target 0.5) |"
    ]


def sustained_row(bench: BenchRun) -> str:
    fig = bench.figures
    passed = [s for s in fig.get("steps", []) if s["verdict"] == "ok"]
    if not passed:
        tried = sorted(fig.get("steps", []), key=lambda s: s["target_per_s"])
        why = (f"down to {tried[0]['target_per_s']:,.0f} votes/s offered: {tried[0]['verdict']}"
               if tried else "no step ran")  # fmt: skip
        return (f"| sustained end to end (wrk → ingest → runner Jobs → PostgreSQL) |"
                f" no rate sustained ({why}) | latency budget"
                f" {(fig.get('polling_interval_s', 1) + 1) * 1000:,.0f} ms | |")  # fmt: skip
    best = max(passed, key=lambda s: s["figures"]["achieved_per_s"])
    f = best["figures"]
    budget_ms = (fig["polling_interval_s"] + 1) * 1000
    return (f"| sustained end to end (wrk → ingest → runner Jobs → PostgreSQL) |"
            f" {f['achieved_per_s']:,.0f} votes/s for {best['end_s'] - best['start_s']:.0f} s,"
            f" p99 {f['p99_ms']:,.0f} ms, backlog max {f['max_backlog']:,}"
            f" | latency budget {budget_ms:,.0f} ms (polling interval + 1 s)"
            f" | {f['p99_ms'] / budget_ms:.2f}x of the budget |")  # fmt: skip


def memory_rows(ingest: BenchRun, processor: BenchRun, sustained: BenchRun) -> list[str]:
    rows = ["| what | figure | how |", "| --- | --- | --- |"]
    samples = sustained.figures.get("samples", {})
    if samples.get("ingest_rss"):
        rss = max(samples["ingest_rss"]) / MiB
        rows.append(f"| ingest RSS under the sustained load | {rss:.1f} MiB at most"
                    " | sampled every 0.5 s (psutil) |")  # fmt: skip
    if processor.figures:
        p = processor.figures
        peak = max(p["job_peak_rss_mib"])
        rows.append(f"| a Job's peak RSS, draining {p['entries']:,} votes | {peak:.1f} MiB"
                    " | the kernel's maxrss (wait4) |")  # fmt: skip
        rows.append(f"| Redis memory per backlog entry | {p['redis_entry_bytes']:.0f} B waiting,"
                    f" +{p['redis_pending_entry_bytes']:.0f} B while delivered but not acked"
                    " | MEMORY USAGE of the stream, SAMPLES 0 |")  # fmt: skip
    if any(samples.get("job_rss", [])):
        rows.append(f"| a Job's RSS in the sustained run | {max(samples['job_rss']) / MiB:.1f} MiB"
                    " at most | sampled every 0.5 s |")  # fmt: skip
    return rows


def locust_lines(e2e: EndToEnd) -> list[str]:
    s, lat = e2e.summary, e2e.summary["latency"]
    return [
        f"{s['accepted']} votes accepted, {s['recorded']} recorded,"
        f" {s['backpressure']} answered 503 (backpressure, retried), {s['failures']} failed;"
        f" reconciliation {'passed' if s['ok'] else 'FAILED'}. Latency from acceptance to"
        f" recording: p50 {lat['p50_ms']:,.0f} ms, p95 {lat['p95_ms']:,.0f} ms,"
        f" p99 {lat['p99_ms']:,.0f} ms, max {lat['max_ms']:,.0f} ms.",
    ]


def render(
    machine: dict[str, str], benches: dict[str, BenchRun], e2e: EndToEnd, load_average: str
) -> str:
    ingest, processor, sustained = benches["ingest"], benches["processor"], benches["sustained"]
    test = e2e.test
    lines = [
        "# Benchmark report",
        "",
        f"Generated by `make report` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" (load average before the run: {load_average}). Absolute figures depend on the"
        " machine and on what else runs on it; each ratio is against a baseline measured in"
        " the same run, interleaved with it; figures are median (lowest-highest) of rounds.",
        "",
        "## Summary",
        "",
        "| benchmark | figure | baseline measured in the same run | ratio |",
        "| --- | --- | --- | --- |",
        ingest_row(ingest),
        *processor_rows(processor),
        sustained_row(sustained),
        "",
        "## Memory",
        "",
        *memory_rows(ingest, processor, sustained),
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {key} | {value} |" for key, value in machine.items()),
        "",
        "## Sustained end to end",
        "",
        f"`{' '.join(sustained.command)}`: stepped rates from wrk against `python -m ingest`"
        " and the local KEDA runner (Jobs as subprocesses); a step counts when every vote was"
        " accepted, the backlog stayed under what arrives within the budget and p99 from"
        " acceptance to recording stayed within the polling interval + 1 s.",
        "",
        "![rate, backlog and latency over time](sustained.png)",
        "",
        "## Behaviour and reconciliation (locust)",
        "",
        f"`python -m loadtest.run --start --users {test.users} --spawn-rate {test.spawn_rate:g}"
        f" --duration {test.duration}`: locust voters (think time, changing their minds) against"
        " ingest and the local KEDA runner; every accepted vote reconciled. Its rate is the"
        " voters' think time, not a limit of the pipeline.",
        "",
        *locust_lines(e2e),
        "",
        "![throughput over time](throughput.png)",
        "",
        "![latency over time](latency.png)",
        "",
        "## Raw output",
    ]
    for title, bench in (("Ingest benchmark", ingest), ("Processor benchmark", processor),
                         ("Sustained benchmark", sustained)):  # fmt: skip
        lines += ["", f"### {title}: `{' '.join(bench.command)}`", "", "```", bench.output, "```"]
    return "\n".join(lines) + "\n"


def shown(path: Path) -> str:
    """`path` relative to the repository when inside it (the benchmarks run from there)."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.report", description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--spawn-rate", type=float, default=50.0)
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--polling-interval", type=float, default=1.0, help="runner poll, s")
    parser.add_argument("--ingest-seconds", type=int, default=6, help="per bench round")
    parser.add_argument("--ingest-rounds", type=int, default=9)
    parser.add_argument("--processor-entries", type=int, default=200_000)
    parser.add_argument("--processor-rounds", type=int, default=5)
    parser.add_argument("--sustained-start-rate", type=float, default=2000.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    load_average = " ".join(f"{x:.1f}" for x in os.getloadavg())
    scratch = Path(tempfile.mkdtemp(prefix="vote-report-"))
    benches = {
        "ingest": run_bench("loadtest.bench_ingest", ["--duration", str(args.ingest_seconds),
                            "--rounds", str(args.ingest_rounds)], scratch / "ingest.json"),
        "processor": run_bench("loadtest.bench_processor", [
            "--entries", str(args.processor_entries), "--rounds", str(args.processor_rounds)],
            scratch / "processor.json"),
        "sustained": run_bench("loadtest.bench_sustained", [
            "--start-rate", f"{args.sustained_start_rate:g}",
            "--polling-interval", f"{args.polling_interval:g}",
            "--chart", shown(args.out / "sustained.png")], scratch / "sustained.json"),
    }  # fmt: skip
    test = LoadTest(
        args.users, args.spawn_rate, args.duration, scratch / "summary.json",
        ("--ledger-dir", str(scratch)),
    )  # fmt: skip
    e2e = run_end_to_end(test, scratch, args.polling_interval)
    config = own_pipeline_config(process_environ(), None)
    machine = describe_machine(config.redis_url, config.database_url)
    charts.throughput_chart(e2e.timeline, args.out / "throughput.png")
    charts.latency_chart(e2e.timeline, args.out / "latency.png")
    report = render(machine, benches, e2e, load_average)
    (args.out / "REPORT.md").write_text(report, encoding="utf-8")
    print(f"\nreport: {args.out / 'REPORT.md'}")
    failed = any(bench.returncode for bench in benches.values()) or e2e.exit_code
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
