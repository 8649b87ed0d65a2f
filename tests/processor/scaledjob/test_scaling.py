"""KEDA's ScaledJob arithmetic against worked cases, one table per concern."""

from __future__ import annotations

import pytest

from processor.scaledjob.scaling import (
    Calculation,
    ReplicaBounds,
    ScalingStrategy,
    StrategyName,
    TriggerMetric,
    combine,
    decide,
)

CUSTOM = ScalingStrategy(
    "custom", custom_queue_length_deduction=1, custom_running_job_percentage="0.5"
)


def lag(value: float, target: float = 10, activation: float = 0) -> TriggerMetric:
    return TriggerMetric(value=value, target=target, active=value > activation)


# (strategy, lag, target, maxReplicaCount, running, pending) -> Jobs created.
# maxScale = ceil(min(lag / target, max)); see processor/scaledjob/scaling.py for the formulas.
CASES: list[tuple[str, ScalingStrategy, float, float, int, int, int, int]] = [
    ("accurate: issue example", ScalingStrategy("accurate"), 95, 10, 20, 3, 1, 9),
    ("accurate: all pending", ScalingStrategy("accurate"), 30, 10, 20, 3, 3, 0),
    ("accurate: capped by max", ScalingStrategy("accurate"), 500, 10, 20, 15, 2, 5),
    ("accurate: at max", ScalingStrategy("accurate"), 500, 10, 20, 20, 0, 0),
    ("accurate: one vote, big target", ScalingStrategy("accurate"), 1, 1000, 10, 0, 0, 1),
    ("accurate: pending subtracted at the cap", ScalingStrategy("accurate"), 200, 10, 20, 5, 5, 15),
    ("default: minus running", ScalingStrategy("default"), 95, 10, 20, 3, 1, 7),
    ("default: more running than needed", ScalingStrategy("default"), 20, 10, 20, 5, 0, 0),
    ("default: capped by max", ScalingStrategy("default"), 1000, 10, 20, 0, 0, 20),
    ("custom: deduction and half of running", CUSTOM, 95, 10, 20, 3, 1, 8),
    ("custom: capped by max", CUSTOM, 1000, 10, 5, 0, 0, 4),
    (
        "custom: unparsable percentage falls back to default",
        ScalingStrategy("custom", 1, "half"),
        95,
        10,
        20,
        3,
        1,
        7,
    ),
    ("eager: fills free slots", ScalingStrategy("eager"), 95, 10, 20, 3, 1, 10),
    ("eager: near max", ScalingStrategy("eager"), 95, 10, 12, 3, 1, 8),
    ("eager: small queue", ScalingStrategy("eager"), 3, 10, 20, 0, 0, 1),
]


@pytest.mark.parametrize(
    ("strategy", "metric", "target", "maximum", "running", "pending", "created"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_jobs_created_per_strategy(
    strategy: ScalingStrategy,
    metric: float,
    target: float,
    maximum: int,
    running: int,
    pending: int,
    created: int,
) -> None:
    bounds = ReplicaBounds(max_replica_count=maximum)
    decision = decide(strategy, bounds, [lag(metric, target)], running, pending)
    assert decision.create == created


def test_issue_example_reports_its_inputs() -> None:
    decision = decide(
        ScalingStrategy("accurate"), ReplicaBounds(max_replica_count=20), [lag(95)], 3, 1
    )
    assert (decision.queue_length, decision.max_scale, decision.effective_max_scale) == (95, 10, 9)
    assert decision.active


@pytest.mark.parametrize("name", ["default", "custom", "accurate", "eager"])
@pytest.mark.parametrize(
    ("metric", "activation"),
    [(0, 0), (5, 10), (10, 10), (-1, 0)],
    ids=["empty", "below activation", "at activation", "lag NULL"],
)
def test_inactive_trigger_creates_nothing(name: StrategyName, metric: int, activation: int) -> None:
    strategy = ScalingStrategy(name, 0, "1") if name == "custom" else ScalingStrategy(name)
    decision = decide(
        strategy, ReplicaBounds(max_replica_count=20), [lag(metric, 1, activation)], 0, 0
    )
    assert not decision.active
    assert decision.create == 0


def test_min_replica_count_tops_up_even_when_idle() -> None:
    bounds = ReplicaBounds(min_replica_count=2, max_replica_count=10)
    decision = decide(ScalingStrategy("accurate"), bounds, [lag(0)], 0, 0)
    assert decision.create == 2


def test_running_above_min_replicas_is_measured_against_the_room_above_it() -> None:
    bounds = ReplicaBounds(min_replica_count=2, max_replica_count=10)
    # MaxRC = 8; running above min = 3; maxScale = min(ceil(95/10), 8) = 8; 8 + 3 - 0 > 8.
    decision = decide(ScalingStrategy("accurate"), bounds, [lag(95)], 5, 0)
    assert decision.create == 5


@pytest.mark.parametrize(
    ("bounds", "min_replicas", "max_replicas"),
    [
        (ReplicaBounds(), 0, 100),
        (ReplicaBounds(None, 20), 0, 20),
        (ReplicaBounds(3, 20), 3, 17),
        (ReplicaBounds(30, 20), 20, 20),
        (ReplicaBounds(3, None), 3, 100),
    ],
)
def test_replica_bounds_follow_keda(
    bounds: ReplicaBounds, min_replicas: int, max_replicas: int
) -> None:
    assert (bounds.min_replicas, bounds.max_replicas) == (min_replicas, max_replicas)


@pytest.mark.parametrize(
    ("calculation", "queue", "max_scale"),
    [("max", 95, 10), ("min", 30, 3), ("sum", 125, 13), ("avg", 63, 7)],
)
def test_multiple_triggers_combine_like_keda(
    calculation: Calculation, queue: int, max_scale: int
) -> None:
    metrics = [lag(95), lag(30), lag(7, activation=10)]
    active, queue_length, scale = combine(metrics, calculation, ReplicaBounds())
    assert active
    assert (queue_length, scale) == (queue, max_scale)
