"""Local Job lifecycle with a tiny fake Job command: readiness, retries, deadline, history."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from processor.scaledjob.localjobs import JobState, LocalJob, LocalJobs
from processor.scaledjob.manifest import parse_manifest
from processor.scaledjob.podenv import local_command
from tests.support.keda_manifest import scaledjob_document
from votecontract.names import StreamNames

# Appends one JSON line per pod run to argv[1], then behaves as argv[2] says; "ready-later"
# waits for the test to create files next to argv[1], so no step depends on a delay.
FAKE_JOB = r"""
import json, os, pathlib, signal, sys, time
log, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
ready = pathlib.Path(os.environ["READY_FILE"])
runs = log.read_text().count("\n") if log.exists() else 0
with log.open("a") as out:
    out.write(json.dumps({"job": os.environ.get("JOB_NAME"), "ready_file": str(ready),
                          "fresh": not any(ready.parent.iterdir())}) + "\n")
def wait_for(name):  # a file the test creates when it wants the pod to go on
    while not (log.parent / name).exists():
        time.sleep(0.01)
if mode == "ready-later":
    wait_for("make-ready"); ready.touch(); wait_for("finish")
elif mode == "fail":
    ready.touch(); sys.exit(3)
elif mode == "fail-once":
    ready.touch(); sys.exit(3 if runs == 0 else 0)
elif mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN); ready.touch(); time.sleep(30)
elif mode == "obey-term":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); ready.touch(); time.sleep(30)
"""


def fake(log: Path, mode: str) -> tuple[str, ...]:
    return (sys.executable, "-c", FAKE_JOB, str(log), mode)


def records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def make_jobs(tmp_path: Path, stream_names: StreamNames) -> Iterator[Callable[..., LocalJobs]]:
    created: list[LocalJobs] = []

    def make(mode: str, **spec: Any) -> LocalJobs:
        manifest = parse_manifest(scaledjob_document(stream_names, **spec))
        jobs = LocalJobs(
            manifest,
            tmp_path / "jobs",
            command=fake(tmp_path / "runs.jsonl", mode),
            host_env={"PATH": "/usr/bin:/bin"},
            pod_backoff_s=0.0,
            log_files=True,
        )
        created.append(jobs)
        return jobs

    yield make
    for jobs in created:
        jobs.kill_all()


def wait_for(jobs: LocalJobs, done: Callable[[], bool], timeout: float = 60.0) -> None:
    """Reconcile until `done()`; the bound is generous: pods are Python processes that start
    at the pace of a possibly loaded machine."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
        jobs.reconcile()


def finished(job: LocalJob) -> Callable[[], bool]:
    return lambda: job.state is not JobState.RUNNING


def test_python_command_runs_with_this_interpreter() -> None:
    assert local_command(("python", "-m", "processor")) == (sys.executable, "-m", "processor")


def test_job_is_pending_until_its_readiness_probe_passes(
    make_jobs: Callable[..., LocalJobs], tmp_path: Path
) -> None:
    jobs = make_jobs("ready-later")
    job = jobs.start()
    jobs.reconcile()
    assert jobs.counts() == (1, 1)

    (tmp_path / "make-ready").touch()
    wait_for(jobs, lambda: job.ready)
    assert jobs.counts() == (1, 0)
    (tmp_path / "finish").touch()
    wait_for(jobs, finished(job))

    assert (job.state, jobs.counts()) == (JobState.COMPLETE, (0, 0))
    (run,) = records(tmp_path / "runs.jsonl")
    assert run["job"] == job.name
    assert run["job"].startswith("vote-processor-")
    assert Path(run["ready_file"]).is_relative_to(job.workdir)


def test_failed_pod_is_retried_under_the_same_job_name_with_fresh_volumes(
    make_jobs: Callable[..., LocalJobs], tmp_path: Path
) -> None:
    jobs = make_jobs("fail-once", backoffLimit=2)
    job = jobs.start()
    wait_for(jobs, finished(job))

    runs = records(tmp_path / "runs.jsonl")
    assert (job.state, job.failures) == (JobState.COMPLETE, 1)
    assert [run["job"] for run in runs] == [job.name, job.name]
    assert all(run["fresh"] for run in runs)
    assert len(set(job.pod_names)) == 2


def test_backoff_limit_fails_the_job(make_jobs: Callable[..., LocalJobs], tmp_path: Path) -> None:
    jobs = make_jobs("fail", backoffLimit=1)
    job = jobs.start()
    wait_for(jobs, finished(job))

    assert (job.state, job.reason) == (JobState.FAILED, "BackoffLimitExceeded")
    assert len(records(tmp_path / "runs.jsonl")) == 2


@pytest.mark.parametrize("mode", ["obey-term", "ignore-term"])
def test_active_deadline_terminates_then_kills(
    make_jobs: Callable[..., LocalJobs], mode: str
) -> None:
    jobs = make_jobs(mode, activeDeadlineSeconds=1, terminationGracePeriodSeconds=1)
    job = jobs.start()
    wait_for(jobs, finished(job))

    assert (job.state, job.reason) == (JobState.FAILED, "DeadlineExceeded")
    assert not job.alive


def test_history_limits_delete_the_oldest_finished_jobs(
    make_jobs: Callable[..., LocalJobs], tmp_path: Path
) -> None:
    jobs = make_jobs(
        "fail-once", backoffLimit=0, successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1
    )
    started = [jobs.start() for _ in range(4)]  # the first run fails, the others succeed
    wait_for(jobs, lambda: not jobs.unfinished)

    kept = {job.state: job for job in jobs.jobs}
    assert set(kept) == {JobState.COMPLETE, JobState.FAILED}
    assert len(jobs.jobs) == 2
    for job in started:
        assert job.workdir.exists() == (job in jobs.jobs)


@pytest.mark.parametrize(
    ("mode", "state"), [("obey-term", JobState.COMPLETE), ("ignore-term", JobState.FAILED)]
)
def test_shutdown_terminates_running_jobs_within_grace(
    make_jobs: Callable[..., LocalJobs], mode: str, state: JobState
) -> None:
    jobs = make_jobs(mode, terminationGracePeriodSeconds=1)
    job = jobs.start()
    wait_for(jobs, lambda: job.ready)

    jobs.shutdown()
    wait_for(jobs, finished(job))

    assert job.state is state
    assert not job.alive
