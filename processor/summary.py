"""Per-batch log lines and the Job's closing summary."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from processor.batches import Batch
from processor.store import BatchCounts

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    """Why a Job ended; only GAVE_UP is a failure (non-zero exit)."""

    RUNNING = "running"
    DRAINED = "drained"  # no new entries left
    DEADLINE = "deadline"  # MAX_RUNTIME_S elapsed
    STOPPED = "stopped"  # SIGTERM/SIGINT
    GAVE_UP = "gave_up"  # Redis or PostgreSQL stayed unavailable


@dataclass(slots=True)
class JobSummary:
    consumer: str
    outcome: Outcome = Outcome.RUNNING
    batches: int = 0
    entries: int = 0
    recorded: int = 0
    superseded: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    vanished: int = 0
    over_delivery_limit: int = 0
    trimmed: int = 0
    mirror_failures: int = 0  # dead letters Redis refused to mirror to <stream>:dead

    def add(
        self,
        batch: Batch,
        counts: BatchCounts,
        trimmed: int,
        seconds: float,
        mirror_failures: int = 0,
    ) -> None:
        """Count a settled batch and log its line."""
        self.batches += 1
        self.entries += len(batch.ids)
        self.recorded += counts.recorded
        self.superseded += counts.superseded
        self.duplicates += counts.duplicates
        self.dead_lettered += counts.dead_lettered
        self.vanished += batch.vanished
        self.over_delivery_limit += batch.over_limit
        self.trimmed += trimmed
        self.mirror_failures += mirror_failures
        logger.info(
            "batch",
            extra={
                "source": batch.source,
                "entries": len(batch.ids),
                **counts._asdict(),
                "vanished": batch.vanished,
                "over_delivery_limit": batch.over_limit,
                "trimmed": trimmed,
                "mirror_failures": mirror_failures,
                "duration_ms": round(seconds * 1000, 1),
            },
        )

    def log(self, seconds: float) -> None:
        """The closing line: totals, throughput and why the Job ended."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields["outcome"] = str(self.outcome)
        fields["duration_s"] = round(seconds, 3)
        fields["entries_per_s"] = round(self.entries / seconds) if seconds > 0 else 0
        level = logging.ERROR if self.outcome is Outcome.GAVE_UP else logging.INFO
        logger.log(level, "job finished", extra=fields)
