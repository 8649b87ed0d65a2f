"""PNG charts of an end-to-end run: throughput and latency over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from loadtest.timeline import Timeline

SIZE_IN = (9.0, 4.0)
SMOOTH_S = 5


def rolling_mean(series: list[int], window: int) -> list[float]:
    """Trailing mean: Jobs record in bursts (one per runner poll), a mean shows the trend."""
    return [
        sum(series[max(0, i - window + 1) : i + 1]) / min(window, i + 1) for i in range(len(series))
    ]


def throughput_chart(timeline: Timeline, path: Path) -> None:
    seconds = range(timeline.seconds)
    fig, ax = plt.subplots(figsize=SIZE_IN)
    ax.plot(seconds, timeline.accepted, label="accepted by ingest (202)", linewidth=1.5)
    ax.plot(seconds, timeline.recorded, color="tab:orange", alpha=0.3, linewidth=1,
            label="recorded in PostgreSQL, per second")  # fmt: skip
    ax.plot(seconds, rolling_mean(timeline.recorded, SMOOTH_S), color="tab:orange",
            linewidth=1.8, label=f"recorded in PostgreSQL, {SMOOTH_S} s mean")  # fmt: skip
    ax.set(xlabel="seconds since the first accepted vote", ylabel="votes per second")
    ax.set_title("End-to-end throughput")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latency_chart(timeline: Timeline, path: Path) -> None:
    points = [
        (s, p50, p99)
        for s, (p50, p99) in enumerate(zip(timeline.p50_ms, timeline.p99_ms, strict=True))
        if p50 is not None and p99 is not None
    ]
    fig, ax = plt.subplots(figsize=SIZE_IN)
    ax.plot([s for s, _, _ in points], [p for _, p, _ in points], label="p50", linewidth=1.5)
    ax.plot([s for s, _, _ in points], [p for _, _, p in points], label="p99", linewidth=1.5)
    ax.set(xlabel="second of acceptance", ylabel="accepted → recorded, ms")
    ax.set_title("End-to-end latency of the votes accepted in each second")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
