"""What a benchmark run tells beyond requests/s: the server's CPU per request, whether the
load generator (not the server) was the bottleneck, and the median and spread of rounds.

A generator busy for most of a core is saturated: the server could have taken more, so a
ratio between two servers would compare the generator with itself and is refused. A server
that used much less than a core while the generator was not saturated was starved by other
work on the machine: its req/s then measures the scheduler; CPU per request does not.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

GENERATOR_SATURATED_CORES = 0.9  # of the one core a single-threaded generator can use
# A one-process server that is the bottleneck keeps its core busy; one that used less than
# this while the generator was not saturated was waiting for a core other processes held.
SERVER_STARVED_CORES = 0.8


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants."""
    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its live descendants."""
    root = psutil.Process(pid)
    total = 0
    for process in (root, *root.children(recursive=True)):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def generator_saturated(generator_cores: float) -> bool:
    return generator_cores >= GENERATOR_SATURATED_CORES


def server_starved(server_cores: float) -> bool:
    return server_cores < SERVER_STARVED_CORES


@dataclass(frozen=True, slots=True)
class Spread:
    """Median, lowest and highest of a figure over rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no values")
        return cls(statistics.median(values), min(values), max(values))

    def text(self, fmt: str = ",.0f") -> str:
        return f"{self.median:{fmt}} ({self.low:{fmt}}-{self.high:{fmt}})"


def paired_ratios(figures: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """Round-by-round ratios of interleaved runs (each pair saw the same background load)."""
    return [f / b for f, b in zip(figures, baselines, strict=True) if b > 0]
