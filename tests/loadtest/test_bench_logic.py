"""The benchmarks' judgement: saturated generators, refused ratios, spreads, image env."""

from __future__ import annotations

from loadtest import bench_ingest, measure
from loadtest.entrypoint import DOCKERFILE, image_env
from loadtest.httpload import Drive


def run(
    name: str, rate: float, cpu_s: float, generator_cores: float, errors: int = 0
) -> bench_ingest.Run:
    """A 10 s run; `cpu_s` of server CPU (9: the server busy 0.9 of a core)."""
    load = Drive("wrk", int(rate * 10), 10.0, rate, 1.0, 5.0, errors, generator_cores)
    return bench_ingest.Run(name, load, cpu_s)


def test_a_generator_near_a_full_core_is_saturated() -> None:
    assert measure.generator_saturated(0.95)
    assert not measure.generator_saturated(0.3)


def test_the_ratio_is_the_median_of_round_by_round_ratios() -> None:
    rounds = [
        (run("bare", 1000, 1.0, 0.2), run("ingest", 1100, 0.9, 0.2)),
        (run("bare", 2000, 2.0, 0.2), run("ingest", 2000, 1.6, 0.2)),
        (run("bare", 1000, 1.0, 0.2), run("ingest", 1300, 1.3, 0.2)),
    ]
    verdict = bench_ingest.judge(rounds)
    assert verdict.ratio == measure.Spread(1.1, 1.0, 1.3)
    assert verdict.cpu_ratio is not None
    # bare 100 us per request each round; ingest 81.8, 80 and 100 us
    assert round(verdict.cpu_ratio.median, 3) == 1.222


def test_rounds_with_a_saturated_generator_do_not_count_and_a_minority_is_refused() -> None:
    good = (run("bare", 1000, 1.0, 0.2), run("ingest", 1000, 1.0, 0.2))
    saturated = (run("bare", 1000, 1.0, 0.2), run("ingest", 1500, 1.0, 0.97))
    verdict = bench_ingest.judge([good, good, saturated])
    assert (verdict.valid_rounds, verdict.ratio) == (2, measure.Spread(1.0, 1.0, 1.0))
    refused = bench_ingest.judge([good, saturated, saturated])
    assert refused.ratio is None
    assert "generator" in refused.refusal
    lines = bench_ingest.summary_lines([good, saturated, saturated], refused, "wrk")
    assert lines[-1].startswith("ingest/bare: REFUSED (the load generator")


def test_errors_refuse_the_ratio() -> None:
    verdict = bench_ingest.judge([(run("bare", 1000, 1.0, 0.2), run("ingest", 1000, 1.0, 0.2, 3))])
    assert verdict.ratio is None
    assert "non-2xx" in verdict.refusal


def test_a_run_without_wrk_says_so() -> None:
    rounds = [(run("bare", 1000, 1.0, 0.2), run("ingest", 1000, 1.0, 0.2))]
    lines = bench_ingest.summary_lines(rounds, bench_ingest.judge(rounds), "asyncio")
    assert lines[-1].startswith("NOTE: load from the asyncio client, not wrk")


def test_spread_text_shows_median_and_range() -> None:
    assert measure.Spread.of([3.0, 1.0, 2.0]).text(".1f") == "2.0 (1.0-3.0)"


def test_image_env_reads_the_final_stage_with_continuations_and_comments() -> None:
    text = (
        "FROM python AS builder\nENV BUILD_ONLY=1\nFROM python\n"
        'ENV A=1 \\\n    # a comment inside\n    B="two words"\nENV LEGACY value here\n'
    )
    assert image_env(text) == {"A": "1", "B": "two words", "LEGACY": "value here"}


def test_the_real_dockerfile_sets_host_and_port() -> None:
    env = image_env(DOCKERFILE.read_text(encoding="utf-8"))
    assert env["PORT"] == "8000"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_starved_servers_make_the_cpu_ratio_the_figure_and_req_s_not_comparable() -> None:
    # 1 s of CPU in a 10 s run: the servers had a tenth of a core
    starved = [(run("bare", 1000, 1.0, 0.2), run("ingest", 800, 0.7, 0.2))] * 3
    verdict = bench_ingest.judge(starved)
    assert verdict.starved
    line = bench_ingest.summary_lines(starved, verdict, "wrk")[-1]
    assert line.startswith("ingest/bare: 1.14 (1.14-1.14)x by server CPU per request")
    assert "req/s 0.80 (0.80-0.80)x NOT COMPARABLE: the servers got 0.07 of a core" in line


def test_servers_with_a_core_each_give_both_ratios() -> None:
    busy = [(run("bare", 1000, 9.0, 0.2), run("ingest", 1100, 9.0, 0.2))] * 3
    verdict = bench_ingest.judge(busy)
    assert not verdict.starved
    line = bench_ingest.summary_lines(busy, verdict, "wrk")[-1]
    assert line.startswith("ingest/bare: 1.10 (1.10-1.10)x req/s, 1.10 (1.10-1.10)x by server")
