"""KEDA's ScaledJob arithmetic, as pure functions.

Reproduces KEDA v2.20.2 (`pkg/scaling/scaledjob/metrics.go`, `pkg/scaling/executor/
scale_jobs.go`, `apis/keda/v1alpha1/scaledjob_types.go`) so the local runner starts as many
Jobs as KEDA would for the same metric, running and pending Jobs:

    maxScale = ceil(min(queue / target, MaxRC))      MaxRC = maxReplicaCount - minReplicaCount
    default : eff = maxScale - running
    custom  : eff = min(maxScale - deduction - int(running * percentage), MaxRC)
    accurate: eff = MaxRC - running if maxScale + running - pending > MaxRC else maxScale - pending
    eager   : eff = min(MaxRC - running - pending, maxScale), and scaleTo = MaxRC
    create min(scaleTo, max(eff, 0)) Jobs when the trigger is active (scaleTo = ceil(queue))

`running` counts unfinished Jobs above minReplicaCount; below it KEDA tops up to the minimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

StrategyName = Literal["default", "custom", "accurate", "eager"]
Calculation = Literal["max", "min", "avg", "sum"]
STRATEGIES: tuple[StrategyName, ...] = ("default", "custom", "accurate", "eager")
CALCULATIONS: tuple[Calculation, ...] = ("max", "min", "avg", "sum")
DEFAULT_MAX_REPLICA_COUNT = 100


@dataclass(frozen=True, slots=True)
class ScalingStrategy:
    """`spec.scalingStrategy` of a ScaledJob."""

    strategy: StrategyName = "default"
    custom_queue_length_deduction: int | None = None
    custom_running_job_percentage: str | None = None
    multiple_scalers_calculation: Calculation = "max"
    pending_pod_conditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplicaBounds:
    """`spec.minReplicaCount` / `spec.maxReplicaCount` with KEDA's defaults and clamping."""

    min_replica_count: int | None = None
    max_replica_count: int | None = None

    @property
    def min_replicas(self) -> int:
        low = self.min_replica_count or 0
        if self.max_replica_count is not None and low > self.max_replica_count:
            return self.max_replica_count
        return low

    @property
    def max_replicas(self) -> int:
        """KEDA's `MaxReplicaCount()`: the room above minReplicaCount."""
        if self.max_replica_count is None:
            return DEFAULT_MAX_REPLICA_COUNT
        if (self.min_replica_count or 0) > self.max_replica_count:
            return self.max_replica_count
        return self.max_replica_count - self.min_replicas


@dataclass(frozen=True, slots=True)
class TriggerMetric:
    """One trigger's reading: its metric, its target (e.g. lagCount) and whether it is active."""

    value: float
    target: float
    active: bool

    @property
    def max_value(self) -> float:
        return self.value / self.target


@dataclass(frozen=True, slots=True)
class Decision:
    """What one polling interval decided, with the inputs that led to it."""

    active: bool
    queue_length: int
    max_scale: int
    running: int
    pending: int
    effective_max_scale: int
    create: int


def combine(
    metrics: Sequence[TriggerMetric], calculation: Calculation, bounds: ReplicaBounds
) -> tuple[bool, int, int]:
    """(active, ceil(queue length), maxScale) over the triggers, as KEDA's IsScaledJobActive."""
    queue, max_value, active = 0.0, 0.0, False
    live = [m for m in metrics if m.active]
    if calculation in ("avg", "sum") and live:
        queue = sum(m.value for m in live)
        max_value = sum(m.max_value for m in live)
        if calculation == "avg":
            queue, max_value = queue / len(live), max_value / len(live)
        active = True
    for m in live if calculation in ("max", "min") else ():
        # KEDA's loops: "max" keeps the largest metric above 0, "min" the smallest.
        if (m.value > queue) if calculation == "max" else (queue == 0 or m.value < queue):
            queue, max_value, active = m.value, m.max_value, True
    active = active or bounds.min_replicas > 0
    max_scale = math.ceil(min(max_value, float(bounds.max_replicas)))
    return active, math.ceil(queue), max_scale


def running_job_percentage(strategy: ScalingStrategy) -> float | None:
    """The custom percentage, or None when KEDA would fall back to the default strategy."""
    raw = strategy.custom_running_job_percentage
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def effective_max_scale(
    strategy: ScalingStrategy, max_scale: int, running: int, pending: int, max_replicas: int
) -> tuple[int, int | None]:
    """(eff, scaleTo override or None) of the strategy, as KEDA's GetEffectiveMaxScale."""
    name = strategy.strategy
    percentage = running_job_percentage(strategy) if name == "custom" else None
    if name == "custom" and percentage is not None:
        deduction = strategy.custom_queue_length_deduction or 0
        return min(max_scale - deduction - int(running * percentage), max_replicas), None
    if name == "accurate":
        if max_scale + running - pending > max_replicas:
            return max_replicas - running, None
        return max_scale - pending, None
    if name == "eager":
        return min(max_replicas - running - pending, max_scale), max_replicas
    return max_scale - running, None


def decide(
    strategy: ScalingStrategy,
    bounds: ReplicaBounds,
    metrics: Sequence[TriggerMetric],
    running: int,
    pending: int,
) -> Decision:
    """How many Jobs KEDA creates this polling interval."""
    active, queue_length, max_scale = combine(
        metrics, strategy.multiple_scalers_calculation, bounds
    )
    scale_to = queue_length
    if running < bounds.min_replicas:
        scale_to = effective = bounds.min_replicas - running
    else:
        effective, override = effective_max_scale(
            strategy, max_scale, running - bounds.min_replicas, pending, bounds.max_replicas
        )
        scale_to = scale_to if override is None else override
    effective = max(effective, 0)
    create = max(min(scale_to, effective), 0) if active else 0
    return Decision(active, queue_length, max_scale, running, pending, effective, create)
