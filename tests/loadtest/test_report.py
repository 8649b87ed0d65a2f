from __future__ import annotations

from pathlib import Path

from loadtest import charts, report
from loadtest.run import LoadTest
from loadtest.timeline import Timeline

INGEST_OUTPUT = """load: asyncio client, 64 connections, 10s x 1
  bare:     20000 req/s  p50   2.50 ms  p99   6.00 ms  server CPU    40 us/req  non-2xx 0
ingest:     18000 req/s  p50   2.80 ms  p99   7.50 ms  server CPU    45 us/req  non-2xx 0
ingest/bare: 0.90x req/s, 0.89x by server CPU per request (180000 entries written)"""

PROCESSOR_OUTPUT = """entries                 200000
raw COPY                   500,000 rows/s   (0.40 s)
processor Job              100,000 votes/s  (2.00 s drain, 2.50 s wall)
ratio Job / raw COPY         0.200    (acceptance >= 0.18)
Job batches             400
Job peak RSS                  80.5 MiB"""

TIMELINE = Timeline(
    accepted=[100, 300, 300, 50], recorded=[0, 250, 300, 200],
    p50_ms=[40.0, 55.0, None, 70.0], p99_ms=[90.0, 120.0, None, 150.0],
)  # fmt: skip


def test_figures_are_read_from_the_benchmarks_output() -> None:
    ingest = report.read_figures(INGEST_OUTPUT, report.INGEST_FIGURES)
    assert ingest == {
        "bare_rps": 20000, "bare_p99_ms": 6.0, "ingest_rps": 18000,
        "ingest_p50_ms": 2.8, "ingest_p99_ms": 7.5, "ratio": 0.9,
    }  # fmt: skip
    processor = report.read_figures(PROCESSOR_OUTPUT, report.PROCESSOR_FIGURES)
    assert processor == {
        "entries": 200000, "copy_rows_s": 500000, "job_votes_s": 100000,
        "ratio": 0.2, "peak_rss_mib": 80.5,
    }  # fmt: skip


def test_report_has_the_figures_ratios_machine_and_raw_output() -> None:
    ingest = report.BenchRun(["bench_ingest.py"], INGEST_OUTPUT, 0)
    ingest = report.BenchRun(
        ingest.command, ingest.output, 0, report.read_figures(INGEST_OUTPUT, report.INGEST_FIGURES)
    )
    processor = report.BenchRun(["bench_processor.py"], "changed format", 0)
    summary = {
        "ok": True, "accepted": 750, "recorded": 750, "backpressure": 3, "failures": 0,
        "latency": {"p50_ms": 50.0, "p95_ms": 100.0, "p99_ms": 130.0, "max_ms": 150.0},
    }  # fmt: skip
    e2e = report.EndToEnd(LoadTest(20, 5, "30s", Path("s.json")), 0, summary, TIMELINE)
    text = report.render({"CPU": "Test CPU", "cores (nproc)": "2"}, ingest, processor, e2e)
    assert "| ingest `POST /vote` | 18,000 req/s, p99 7.50 ms |" in text
    assert "| 0.90x |" in text
    assert "raw COPY of the same rows n/a rows/s | n/ax |" in text  # unparsed, not invented
    assert "750 votes accepted, 750 recorded, 3 answered 503" in text
    assert "| CPU | Test CPU |" in text
    assert "changed format" in text
    assert "![throughput over time](throughput.png)" in text


def test_rates_count_the_seconds_up_to_the_last_vote_of_each_series() -> None:
    lagging = Timeline([10, 10, 0, 0], [0, 5, 5, 10], [1.0] * 4, [1.0] * 4)
    assert report.rates(lagging) == (10.0, 5.0)


def test_charts_are_png_files(tmp_path: Path) -> None:
    charts.throughput_chart(TIMELINE, tmp_path / "throughput.png")
    charts.latency_chart(TIMELINE, tmp_path / "latency.png")
    for name in ("throughput.png", "latency.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recorded_bursts_are_smoothed_by_a_trailing_mean() -> None:
    assert charts.rolling_mean([0, 10, 0, 10], 2) == [0.0, 5.0, 5.0, 5.0]
