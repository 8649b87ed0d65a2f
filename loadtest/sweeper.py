"""`python -m loadtest.sweeper INTERVAL`: the local twin of the chart's sweeper CronJob
(keda/sweeper-cronjob.yaml) for a load test's own pipeline. Every INTERVAL seconds it runs one
processor Job (`python -m processor`, JOB_NAME `sweeper-<n>`) with the environment it was given,
whatever the lag: KEDA's lag counts only undelivered votes, so entries left pending (a Job that
failed for good, acks lost in a Redis failover) start no Job by themselves; the sweeper claims
them once idle for CLAIM_MIN_IDLE_MS. One sweep at a time, as the CronJob's Forbid policy; on
SIGTERM the sweep in hand finishes (its own SIGTERM grace) and the loop ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType

from votecontract.names import ENV_JOB_NAME

SWEEP_TIMEOUT_S = 600.0  # the CronJob's activeDeadlineSeconds


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m loadtest.sweeper INTERVAL_SECONDS", file=sys.stderr)
        return 2
    interval_s = float(argv[0])
    stopping = threading.Event()
    current: list[subprocess.Popen[bytes]] = []

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        for process in current:
            process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    sweep = 0
    while not stopping.wait(interval_s):
        sweep += 1
        env = os.environ | {ENV_JOB_NAME: f"sweeper-{os.getpid()}-{sweep}"}
        current[:] = [subprocess.Popen([sys.executable, "-m", "processor"], env=env)]
        try:
            current[0].wait(timeout=SWEEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            current[0].kill()
            current[0].wait()
        current.clear()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
