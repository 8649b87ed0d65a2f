"""The sustained benchmark's rules: pacing, judging a step, the step search, quantiles."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from loadtest import charts, steps
from loadtest.bench_sustained import Samples


def figures(**overrides: float) -> steps.StepFigures:
    base = {"target_per_s": 5000.0, "achieved_per_s": 4900.0, "errors": 0,
            "generator_cores": 0.2, "p99_ms": 1500.0, "max_backlog": 6000}  # fmt: skip
    return steps.StepFigures(**{**base, **overrides})  # type: ignore[arg-type]


def test_a_step_within_every_bound_passes() -> None:
    assert steps.judge_step(figures(), polling_interval_s=1.0) == "ok"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"generator_cores": 0.95}, "load generator saturated"),
        ({"errors": 3}, "3 requests failed"),
        ({"achieved_per_s": 4000.0}, "ingest accepted 4,000 of 5,000"),
        ({"max_backlog": 10_000}, "backlog reached 10,000"),  # > 2 s of 4,900/s
        ({"p99_ms": 2001.0}, "p99 2,001 ms > 2,000 ms"),
        ({"p99_ms": math.inf}, "p99 inf ms"),
    ],
)
def test_a_step_fails_naming_the_first_bound_it_broke(
    overrides: dict[str, float], reason: str
) -> None:
    assert steps.judge_step(figures(**overrides), polling_interval_s=1.0).startswith(reason)


def test_the_pacing_delay_takes_the_response_time_off_the_cycle() -> None:
    assert steps.pacing_delay_ms(64, 8000) == 8.0  # 64 connections, 8 ms apart each
    assert steps.pacing_delay_ms(64, 8000, response_ms=3.0) == 5.0
    assert steps.pacing_delay_ms(64, 8000, response_ms=20.0) == 0.0
    # a slice at 5 ms delay that achieved 6400/s took 10 ms per cycle: 5 ms responding
    assert steps.response_estimate_ms(64, 5.0, 6400) == 5.0


def test_rates_grow_until_a_failure_then_bisect_to_the_precision() -> None:
    assert steps.next_rate([(2000, True)], 1.5, 0.15) == 3000
    history = [(2000, True), (3000, True), (4500, False)]
    assert steps.next_rate(history, 1.5, 0.15) == 3750
    assert steps.next_rate([*history, (3750, True)], 1.5, 0.15) == 4125  # 4500 is 20% above
    assert steps.next_rate([*history, (3750, True), (4125, True)], 1.5, 0.15) is None  # 9%
    assert steps.next_rate([*history, (3750, False)], 1.5, 0.15) == 3375
    assert steps.next_rate([(2000, True), (4000, False), (3000, True)], 2, 0.15) == 3500


def test_when_nothing_passes_the_rate_goes_down_to_a_floor() -> None:
    assert steps.next_rate([(1000, False)], 2, 0.15) == 500
    assert steps.next_rate([(150, False)], 2, 0.15) is None


def test_missing_votes_count_as_infinitely_late() -> None:
    values = [float(v) for v in range(1, 101)]
    assert steps.quantile(values, 0.99) == 99
    assert steps.quantile(values, 0.99, missing=1) == 100
    assert steps.quantile(values, 0.99, missing=2) == math.inf
    assert math.isnan(steps.quantile([], 0.5))


def test_the_sustained_chart_is_a_png(tmp_path: Path) -> None:
    series = {"accepted": [0, 900, 1000, 0], "recorded": [0, 0, 1500, 400],
              "p50_ms": [0, 500, 600, 0], "p99_ms": [0, 900, 1100, 0]}  # fmt: skip
    samples = Samples([0.5, 1.0, 1.5], [0, 800, 200], [50 << 20] * 3, [0, 40 << 20, 0])
    charts.sustained_chart(series, samples, [(0.0, 3.0, 1000.0)], 2.0, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
