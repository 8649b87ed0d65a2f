"""PNG charts of an end-to-end run: throughput and latency over time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from loadtest.timeline import Timeline

if TYPE_CHECKING:
    from loadtest.bench_sustained import Samples

SIZE_IN = (9.0, 4.0)
SMOOTH_S = 5


def rolling_mean(series: Sequence[float], window: int) -> list[float]:
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


def sustained_chart(
    series: Mapping[str, Sequence[float]],
    samples: Samples,
    step_spans: Sequence[tuple[float, float, float]],
    budget_s: float,
    path: Path,
) -> None:
    """Three panels over the seconds of a stepped run: votes per second (offered, accepted,
    recorded), the backlog, and the latency of the votes accepted in each second."""
    fig, (rate, lag, latency) = plt.subplots(3, 1, figsize=(9.0, 8.5), sharex=True)
    seconds = range(len(series["accepted"]))
    for start, end, target in step_spans:
        rate.hlines(target, start, end, colors="tab:gray", linestyles="dashed", linewidth=1.2)
    rate.plot([], [], color="tab:gray", linestyle="dashed", label="offered (wrk)")
    rate.plot(seconds, series["accepted"], label="accepted by ingest (202)", linewidth=1.3)
    rate.plot(seconds, rolling_mean(series["recorded"], SMOOTH_S), color="tab:orange",
              linewidth=1.5, label=f"recorded in PostgreSQL, {SMOOTH_S} s mean")  # fmt: skip
    rate.set(ylabel="votes per second", title="Sustained end to end, stepped rates")
    lag.plot(samples.seconds, samples.backlog, color="tab:red", linewidth=1.2)
    lag.set(ylabel="backlog (lag + pending)")
    active = [(s, p50, p99) for s, (p50, p99, n) in enumerate(
        zip(series["p50_ms"], series["p99_ms"], series["accepted"], strict=True)) if n]  # fmt: skip
    latency.plot([a[0] for a in active], [a[1] for a in active], label="p50", linewidth=1.2)
    latency.plot([a[0] for a in active], [a[2] for a in active], label="p99", linewidth=1.2)
    latency.axhline(budget_s * 1000, color="tab:gray", linestyle="dotted",
                    label="budget: polling interval + 1 s")  # fmt: skip
    latency.set(xlabel="seconds since the run started", ylabel="accepted → recorded, ms")
    for axis in (rate, lag, latency):
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    rate.legend(loc="upper left", fontsize="small")
    latency.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
