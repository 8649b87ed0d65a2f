"""The rules of the sustained end-to-end benchmark, kept apart from the processes it drives
so they can be tested: pacing wrk to a rate, judging a step, choosing the next rate.

A step passes when ingest accepted the offered rate (within 10%) with no error, the backlog
stayed bounded (never more than what arrives within the latency budget), and the p99 from
acceptance to recording stayed within the budget: the runner's polling interval plus 1 s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from loadtest.measure import generator_saturated

RATE_TOLERANCE = 0.9  # achieved / offered, below which ingest did not keep up
MAX_DELAY_MS = 10_000.0
MIN_RATE = 100.0  # votes/s: below this the search gives up


def latency_budget_s(polling_interval_s: float) -> float:
    return polling_interval_s + 1.0


def pacing_delay_ms(connections: int, target_per_s: float, response_ms: float = 0.0) -> float:
    """wrk's per-connection delay before each request for `target_per_s` in total: each
    connection does one request per (delay + response time)."""
    cycle_ms = connections * 1000 / target_per_s
    return min(max(0.0, cycle_ms - response_ms), MAX_DELAY_MS)


def response_estimate_ms(connections: int, delay_ms: float, achieved_per_s: float) -> float:
    """The response time a slice at `delay_ms` implies from the rate it achieved; the next
    slice's delay is re-aimed with it."""
    if achieved_per_s <= 0:
        return 0.0
    return max(0.0, connections * 1000 / achieved_per_s - delay_ms)


@dataclass(frozen=True, slots=True)
class StepFigures:
    target_per_s: float
    achieved_per_s: float
    errors: int
    generator_cores: float
    p99_ms: float  # math.inf when more than 1% of the step's votes were never recorded
    max_backlog: int


def judge_step(step: StepFigures, polling_interval_s: float) -> str:
    """ "ok", or why the step does not count as sustained."""
    budget_s = latency_budget_s(polling_interval_s)
    if generator_saturated(step.generator_cores):
        return f"load generator saturated ({step.generator_cores:.2f} cores)"
    if step.errors:
        return f"{step.errors} requests failed or were refused"
    if step.achieved_per_s < RATE_TOLERANCE * step.target_per_s:
        return f"ingest accepted {step.achieved_per_s:,.0f} of {step.target_per_s:,.0f} votes/s"
    if step.max_backlog > step.achieved_per_s * budget_s:
        return f"backlog reached {step.max_backlog:,} (> {budget_s:g} s of votes)"
    if step.p99_ms > budget_s * 1000:
        return f"p99 {step.p99_ms:,.0f} ms > {budget_s * 1000:,.0f} ms"
    return "ok"


def next_rate(
    history: Sequence[tuple[float, bool]], factor: float, precision: float
) -> float | None:
    """The next offered rate after (rate, passed) steps: multiply by `factor` while steps
    pass (divide while none has); after a failure, bisect between the best pass and the
    lowest failure until they are within `precision` of each other. None: done."""
    if not history:
        raise ValueError("the first rate is the caller's")
    passed = [rate for rate, ok in history if ok]
    failed = [rate for rate, ok in history if not ok]
    if not failed:
        return history[-1][0] * factor
    if not passed:  # down until one passes
        lower = min(failed) / factor
        return lower if lower >= MIN_RATE else None
    best, lowest_failure = max(passed), min(failed)
    if lowest_failure <= best or (lowest_failure - best) / best <= precision:
        return None
    return (best + lowest_failure) / 2


def quantile(values: Sequence[float], q: float, missing: int = 0) -> float:
    """The `q` quantile (nearest rank) of `values` plus `missing` values of infinity."""
    ordered = sorted(values)
    total = len(ordered) + missing
    if not total:
        return math.nan
    rank = max(1, math.ceil(q * total))
    return ordered[rank - 1] if rank <= len(ordered) else math.inf
