from __future__ import annotations

import math
from pathlib import Path

from loadtest import bench_ingest, bench_processor, bench_sustained, charts, report, steps
from loadtest.httpload import Drive
from loadtest.run import LoadTest
from loadtest.timeline import Timeline

TIMELINE = Timeline(
    accepted=[100, 300, 300, 50], recorded=[0, 250, 300, 200],
    p50_ms=[40.0, 55.0, None, 70.0], p99_ms=[90.0, 120.0, None, 150.0],
)  # fmt: skip
SUMMARY = {
    "ok": True, "accepted": 750, "recorded": 750, "backpressure": 3, "failures": 0,
    "latency": {"p50_ms": 50.0, "p95_ms": 100.0, "p99_ms": 130.0, "max_ms": 150.0},
}  # fmt: skip


def ingest_run(generator_cores: float = 0.2) -> report.BenchRun:
    def run(name: str, rate: float, cpu_s: float) -> bench_ingest.Run:
        load = Drive("wrk", int(rate * 10), 10.0, rate, 2.0, 6.0, 0, generator_cores)
        return bench_ingest.Run(name, load, cpu_s)

    rounds = [(run("bare", 10_000, 9.0), run("ingest", 11_000, 8.8))] * 3
    figures = bench_ingest.document(rounds, bench_ingest.judge(rounds), "wrk", 64)
    return report.BenchRun(["python", "-m", "loadtest.bench_ingest"], "ingest output", 0, figures)


def processor_run() -> report.BenchRun:
    rates = bench_processor.Rates(
        job=[100_000.0], copy=[400_000.0], redis=[250_000.0], job_peak_rss_mib=[80.5],
        job_cpu_s=[1.2], job_batches=[20],
    )  # fmt: skip
    figures = bench_processor.document(rates, 200_000, 46.0, 550.0)
    return report.BenchRun(["python", "-m", "loadtest.bench_processor"], "proc out", 0, figures)


def sustained_run() -> report.BenchRun:
    def step(target: float, p99: float, verdict: str) -> bench_sustained.Step:
        fig = steps.StepFigures(target, target * 0.98, 0, 0.1, p99, 9000)
        return bench_sustained.Step(target, 0.0, 20.0, fig, 500.0, verdict)

    done = [step(6000, 1500, "ok"), step(9000, math.inf, "p99 inf ms > 2,000 ms")]
    samples = bench_sustained.Samples([0.5], [10], [60 * 2**20], [90 * 2**20])
    figures = bench_sustained.document(done, samples, {"accepted": [1.0]}, [], 1.0)
    return report.BenchRun(["python", "-m", "loadtest.bench_sustained"], "sus out", 0, figures)


def render(ingest: report.BenchRun) -> str:
    benches = {"ingest": ingest, "processor": processor_run(), "sustained": sustained_run()}
    e2e = report.EndToEnd(LoadTest(20, 5, "30s", Path("s.json")), 0, SUMMARY, TIMELINE)
    return report.render({"CPU": "Test CPU", "cores (nproc)": "2"}, benches, e2e, "1.0 1.0 1.0")


def test_report_has_each_figure_against_its_baseline_from_the_same_run() -> None:
    text = render(ingest_run())
    assert "| 11,000 (11,000-11,000) req/s, 80 (80-80) µs CPU/request |" in text
    assert "bare Starlette endpoint 10,000 (10,000-10,000) req/s, 90 (90-90) µs" in text
    assert "| 1.10 (1.10-1.10)x req/s; 1.12 (1.12-1.12)x by CPU per request |" in text
    assert "| 100,000 (100,000-100,000) votes/s | raw COPY of the same rows" in text
    assert "| 0.40 (0.40-0.40)x the smaller (target 0.5) |" in text  # 100k / min(400k, 250k)
    assert "| 5,880 votes/s for 20 s, p99 1,500 ms, backlog max 9,000" in text
    assert "| 0.75x of the budget |" in text
    assert "750 votes accepted, 750 recorded, 3 answered 503" in text
    assert "| CPU | Test CPU |" in text
    assert "ingest output" in text
    assert "![rate, backlog and latency over time](sustained.png)" in text


def test_memory_figures_are_in_the_report() -> None:
    text = render(ingest_run())
    assert "| ingest RSS under the sustained load | 60.0 MiB at most |" in text
    assert "| a Job's peak RSS, draining 200,000 votes | 80.5 MiB |" in text
    assert "| Redis memory per backlog entry | 46 B waiting, +550 B while delivered" in text


def test_starved_servers_show_the_cpu_ratio_and_req_s_as_not_comparable() -> None:
    bench = ingest_run()
    bench.figures["verdict"]["server_cores"] = 0.4
    text = render(bench)
    assert "| 1.12 (1.12-1.12)x by CPU per request; req/s 1.10 (1.10-1.10)x not comparable" in text


def test_a_refused_ratio_is_shown_as_refused_never_as_a_number() -> None:
    text = render(ingest_run(generator_cores=0.97))
    assert "| refused (the load generator, not the server, was the bottleneck) |" in text


def test_charts_are_png_files(tmp_path: Path) -> None:
    charts.throughput_chart(TIMELINE, tmp_path / "throughput.png")
    charts.latency_chart(TIMELINE, tmp_path / "latency.png")
    for name in ("throughput.png", "latency.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recorded_bursts_are_smoothed_by_a_trailing_mean() -> None:
    assert charts.rolling_mean([0, 10, 0, 10], 2) == [0.0, 5.0, 5.0, 5.0]


def test_no_sustained_rate_names_the_lowest_rate_tried_and_why() -> None:
    bench = sustained_run()
    for step in bench.figures["steps"]:
        step["verdict"] = "backlog reached 9,000 (> 2 s of votes)"
    benches = {"ingest": ingest_run(), "processor": processor_run(), "sustained": bench}
    e2e = report.EndToEnd(LoadTest(20, 5, "30s", Path("s.json")), 0, SUMMARY, TIMELINE)
    text = report.render({}, benches, e2e, "1.0 1.0 1.0")
    assert "no rate sustained (down to 6,000 votes/s offered: backlog reached 9,000" in text
