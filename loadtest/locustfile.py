"""Voters against ingest's `POST /vote`, with reconciliation of every accepted vote at the end.

Each simulated user is one voter with a stable voter_id who votes again and again, sometimes
changing their mind; options are weighted. 202 is success (the entry ID is kept in the run's
ledger), 503 is backpressure (retried after `Retry-After`), anything else is a failure.
When locust quits, the ledger is written to a file and `python -m loadtest.reconcile check`
runs in a subprocess (locust's gevent monkey-patching and asyncio do not mix in one process):
a mismatch makes locust exit non-zero.

    locust --config loadtest/locust.conf --headless -u 200 -r 50 -t 60s

Local mode only: in distributed mode each worker would hold part of the ledger.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.argument_parser import LocustArgumentParser
from locust.contrib.fasthttp import ResponseContextManager
from locust.env import Environment
from locust.runners import LocalRunner

from loadtest.ledger import write_ledger
from loadtest.vote_run import VoteRun, holds_for_votes, parse_weights, stepped_users
from votecontract.environment import env_list
from votecontract.names import DEFAULT_VOTE_OPTIONS, ENV_VOTE_OPTIONS, FIELD_OPTION, FIELD_VOTER_ID

logger = logging.getLogger(__name__)

VOTE_NAME = "POST /vote"
BACKPRESSURE_NAME = "POST /vote (503 backpressure)"
RETRY_AFTER_BOUNDS_S = (0.05, 30.0)
# 503s after which Redis may have stored the vote all the same (its reply came too late, or
# too few replicas confirmed it: docs/ingest.md): the outcome is unknown, like a timeout's.
MAYBE_STORED = frozenset({"redis_unavailable", "not_replicated"})

RUN = VoteRun(options=env_list(os.environ, ENV_VOTE_OPTIONS, DEFAULT_VOTE_OPTIONS), weights=())


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def add_arguments(parser: LocustArgumentParser) -> None:
    group = parser.add_argument_group("vote pipeline")
    group.add_argument("--option-weights", default="", help="e.g. 5,3,1 (default: n..1)")
    group.add_argument("--change-vote-percent", type=float, default=10.0)
    group.add_argument("--think-time", default="0.05,0.5", help="MIN,MAX seconds between votes")
    group.add_argument("--max-503-retries", type=int, default=20)
    group.add_argument("--ledger-dir", default=tempfile.gettempdir())
    group.add_argument("--reconcile-timeout", type=float, default=120.0)
    group.add_argument("--reconcile-json", default="", help="write the summary as JSON here")
    group.add_argument("--skip-reconcile", action="store_true", default=False)
    group.add_argument(
        "--min-votes",
        type=int,
        default=0,
        help="keep the top step after --run-time until this many votes were accepted",
    )
    group.add_argument(
        "--min-votes-within", type=float, default=120.0, help="seconds --min-votes may add"
    )


@events.init.add_listener  # type: ignore[untyped-decorator]
def configure(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    RUN.weights = parse_weights(options.option_weights, RUN.options)
    low, high = (float(part) for part in options.think_time.split(","))
    RUN.think_time_s = (low, high)
    if options.min_votes > 0 and options.run_time:
        # The staircase keeps --run-time; locust's own run-time limit (which kills users
        # mid-request) moves past the longest hold and the ramp-down, as the outer bound.
        RUN.steps_duration_s = float(options.run_time)
        options.run_time += int(options.min_votes_within + StepShape.ramp_down_s) + 1


class Voter(FastHttpUser):
    """One voter; thinks, then votes for their current choice, now and then changing it."""

    # The think time is slept inside the task, not as locust's wait_time: a user stopped while
    # in wait_time is killed, and the kill lands later, possibly in the middle of the next
    # request (its outcome then unknown). Stopped inside a task, a user finishes the task.
    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.voter_id = RUN.new_voter_id()
        self.choice = RUN.pick_option(self.rng)

    @task
    def vote(self) -> None:
        time.sleep(self.rng.uniform(*RUN.think_time_s))  # gevent-patched
        options = self.environment.parsed_options
        change_percent = options.change_vote_percent if options else 10.0
        if self.rng.random() * 100 < change_percent:
            self.choice = RUN.pick_option(self.rng, instead_of=self.choice)
        self.cast(self.choice)

    def cast(self, option: str) -> None:
        options = self.environment.parsed_options
        retries = options.max_503_retries if options else 20
        for attempt in range(retries + 1):
            delay = self.post_vote(option, final=attempt == retries)
            if delay is None:
                return
            time.sleep(delay)  # gevent-patched: yields to the other voters

    def post_vote(self, option: str, *, final: bool) -> float | None:
        """One attempt; the seconds to wait before retrying, or None when done."""
        body = {FIELD_OPTION: option, FIELD_VOTER_ID: self.voter_id}
        RUN.in_flight += 1
        with self.client.post("/vote", json=body, name=VOTE_NAME, catch_response=True) as resp:
            RUN.in_flight -= 1
            if resp.status_code == 503 and not final:
                return backpressure(resp)
            if resp.status_code == 202:
                accepted(resp, self.voter_id, option)
                return None
            if resp.status_code == 0:  # connection error or timeout: ingest may have accepted
                RUN.uncertain += 1
            RUN.failures += 1
            what = "503 on the last retry" if resp.status_code == 503 else "unexpected"
            resp.failure(f"{what} {resp.status_code}: {(resp.text or '')[:200]}")
            return None


def accepted(resp: ResponseContextManager, voter_id: str, option: str) -> None:
    try:
        entry_id = resp.json()["id"]
        RUN.record_accepted(entry_id, voter_id, option)
    except (ValueError, KeyError, TypeError):
        RUN.failures += 1
        resp.failure(  # type: ignore[no-untyped-call]
            f"202 without an entry ID: {resp.text[:200] if resp.text else ''}"
        )
        return
    resp.success()  # type: ignore[no-untyped-call]


def backpressure(resp: ResponseContextManager) -> float:
    """503 is the pipeline protecting itself, not a failure: its own row in the stats."""
    RUN.backpressure += 1
    if error_code(resp) in MAYBE_STORED:
        RUN.uncertain += 1
    resp.request_meta["name"] = BACKPRESSURE_NAME
    resp.success()  # type: ignore[no-untyped-call]
    headers = resp.headers
    try:
        delay = float(str(headers.get("Retry-After", "1") if headers is not None else "1"))
    except ValueError:
        delay = 1.0
    low, high = RETRY_AFTER_BOUNDS_S
    return min(max(delay, low), high)


def error_code(resp: ResponseContextManager) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


class StepShape(LoadTestShape):
    """A staircase to `--users` in four steps over `--run-time` (default 60 s), then a
    ramp-down to zero before the end: users stopped that way finish the vote in hand, while
    locust's quit after a shape ends kills them mid-request (leaving outcomes unknown)."""

    use_common_options = True
    steps = 4
    ramp_down_s = 5.0
    stepped_until: float | None = None  # when the staircase (and any hold for votes) ended

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        assert options is not None
        elapsed: float = self.get_run_time()  # type: ignore[no-untyped-call]
        duration = RUN.steps_duration_s or float(options.run_time or 60)
        top, rate = options.num_users or 1, float(options.spawn_rate or 1)
        users = stepped_users(elapsed, duration, top, self.steps)
        if users is not None:
            return users, rate
        if self.stepped_until is None:
            held_s = elapsed - duration
            if holds_for_votes(len(RUN.votes), options.min_votes, held_s, options.min_votes_within):
                return top, rate
            self.stepped_until = elapsed
        grace = float(options.stop_timeout or 0) + self.ramp_down_s
        if self.runner.user_count > 0 and elapsed < self.stepped_until + grace:
            return 0, float(min(max(top, 1), 100))
        return None


def ledger_paths(environment: Environment) -> tuple[Path, Path]:
    assert environment.parsed_options is not None
    directory = Path(environment.parsed_options.ledger_dir)
    return (
        directory / f"vote-ledger-{RUN.run_id}.json",
        directory / f"vote-baseline-{RUN.run_id}.json",
    )


def reconcile_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "loadtest.reconcile", *args]


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def snapshot_tally(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, LocalRunner):
        logger.warning("reconciliation needs locust's local mode; skipped")
        return
    baseline = ledger_paths(environment)[1]
    baseline.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(reconcile_command("snapshot", str(baseline)), check=True)


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def reconcile_run(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    ledger, baseline = ledger_paths(environment)
    if options is None or not baseline.exists():
        return
    write_ledger(ledger, RUN.ledger())
    print(f"ledger of run {RUN.run_id}: {ledger}", flush=True)
    if options.skip_reconcile:
        return
    args = [str(ledger), "--baseline", str(baseline), "--timeout", str(options.reconcile_timeout)]
    if options.reconcile_json:
        args += ["--json-out", options.reconcile_json]
    if subprocess.run(reconcile_command("check", *args), check=False).returncode != 0:
        environment.process_exit_code = 3
