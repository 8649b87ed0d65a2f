"""Kubernetes Jobs on one machine: each Job's pod is a subprocess, managed like the Job controller.

What carries over from a cluster, and how:
- Job name `<scaledjob>-<5 random chars>` (KEDA's generateName); every retry of a failed pod
  runs under the SAME Job name, so `JOB_NAME` (hence the consumer name) is kept.
- What the pod sees (command, env, emptyDir volumes): see processor.scaledjob.podenv.
- Readiness: the exec probe runs after `initialDelaySeconds`, every `periodSeconds`.
- `restartPolicy: Never` + `backoffLimit`: a failed pod is replaced after the pod failure
  backoff (10 s doubling, at most 6 min; `pod_backoff_s` scales it) until `backoffLimit`
  failures, then the Job is Failed.
- `activeDeadlineSeconds` (from the Job's start): SIGTERM, SIGKILL after
  `terminationGracePeriodSeconds`, Job Failed.
- Finished Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted with
  their directories, oldest first.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from processor.scaledjob.manifest import ScaledJobManifest
from processor.scaledjob.podenv import PodIdentity, local_command, localize, pod_env, volume_dirs

logger = logging.getLogger(__name__)

POD_FAILURE_BACKOFF_CAP_S = 360.0
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet


class JobState(StrEnum):
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"


@dataclass
class LocalJob:
    name: str
    workdir: Path
    started_at: float
    pod_name: str = ""
    process: subprocess.Popen[bytes] | None = None
    pod_started_at: float = 0.0
    failures: int = 0
    ready: bool = False
    state: JobState = JobState.RUNNING
    reason: str = ""
    finished_at: float | None = None
    retry_at: float | None = None
    term_sent_at: float | None = None
    next_probe_at: float = 0.0
    pod_names: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class LocalJobs:
    """The Jobs of one ScaledJob, as subprocesses; call `reconcile()` regularly."""

    def __init__(
        self,
        manifest: ScaledJobManifest,
        workroot: Path,
        *,
        command: tuple[str, ...] | None = None,
        host_env: Mapping[str, str] | None = None,
        pod_backoff_s: float = 10.0,
        log_files: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.manifest = manifest
        self.template = manifest.job
        self.workroot = workroot
        self.command = command or local_command(manifest.job.command)
        self.host_env = dict(os.environ if host_env is None else host_env)
        self.pod_backoff_s = pod_backoff_s
        self.log_files = log_files
        self.clock = clock
        self.jobs: list[LocalJob] = []
        self.stopping = False

    @property
    def unfinished(self) -> list[LocalJob]:
        return [job for job in self.jobs if job.state is JobState.RUNNING]

    def is_pending(self, job: LocalJob) -> bool:
        """KEDA's pending: no pod meets all pendingPodConditions (default: Running)."""
        conditions = self.manifest.strategy.pending_pod_conditions
        if not conditions:
            return not job.alive
        started = job.alive
        met = {"PodScheduled": started, "Initialized": started}
        met |= {"ContainersReady": job.ready, "Ready": job.ready}
        return not all(met.get(condition, False) for condition in conditions)

    def counts(self) -> tuple[int, int]:
        """(running, pending) as KEDA counts them."""
        unfinished = self.unfinished
        return len(unfinished), sum(1 for job in unfinished if self.is_pending(job))

    def start(self) -> LocalJob:
        name = f"{self.manifest.name}-{_token()}"
        job = LocalJob(name=name, workdir=self.workroot / name, started_at=self.clock())
        self.jobs.append(job)
        self._launch(job)
        logger.info("job %s started", name, extra={"job": name})
        return job

    def reconcile(self) -> None:
        now = self.clock()
        for job in self.unfinished:
            self._check_exit(job, now)
            self._check_deadline(job, now)
            self._check_retry(job, now)
            self._probe(job, now)
        self._trim_history()

    def shutdown(self) -> None:
        """Start no pod any more; SIGTERM the running ones (SIGKILL after the grace period)."""
        self.stopping = True
        now = self.clock()
        for job in self.unfinished:
            if job.alive:
                self._terminate(job, now, job.reason or "RunnerStopped")
            else:
                self._finish(job, JobState.FAILED, "RunnerStopped", now)

    def kill_all(self) -> None:
        for job in self.unfinished:
            if job.alive:
                _signal(job, signal.SIGKILL)

    def mounts(self, job: LocalJob) -> dict[str, Path]:
        return volume_dirs(self.template, job.workdir)

    def pod_env(self, job: LocalJob) -> dict[str, str]:
        pod = PodIdentity(job.name, job.pod_name, self.manifest.namespace)
        return pod_env(self.template, pod, self.host_env, self.mounts(job))

    def _launch(self, job: LocalJob) -> None:
        job.pod_name = f"{job.name}-{_token()}"
        job.pod_names.append(job.pod_name)
        for local in self.mounts(job).values():
            shutil.rmtree(local, ignore_errors=True)  # a new pod gets fresh emptyDirs
            local.mkdir(parents=True)
        output = (job.workdir / f"{job.pod_name}.log").open("wb") if self.log_files else None
        job.process = subprocess.Popen(
            self.command,
            env=self.pod_env(job),
            stdin=subprocess.DEVNULL,
            stdout=output if output else sys.stderr.fileno(),
            stderr=output if output else None,
            start_new_session=True,  # Ctrl-C reaches the runner, which signals the pods
        )
        if output:
            output.close()
        job.pod_started_at = self.clock()
        job.ready, job.retry_at = False, None
        probe = self.template.readiness
        job.next_probe_at = job.pod_started_at + (probe.initial_delay_s if probe else 0)

    def _check_exit(self, job: LocalJob, now: float) -> None:
        if job.process is None or job.process.poll() is None:
            return
        code, job.process, job.ready = job.process.returncode, None, False
        if job.reason == "DeadlineExceeded":
            self._finish(job, JobState.FAILED, job.reason, now)
        elif code == 0:
            self._finish(job, JobState.COMPLETE, "Completed", now)
        elif self.stopping:
            self._finish(job, JobState.FAILED, "RunnerStopped", now)
        else:
            job.failures += 1
            logger.warning(
                "job %s: pod exited with %s",
                job.name,
                code,
                extra={"job": job.name, "exit_code": code},
            )
            if job.failures > self.template.backoff_limit:
                self._finish(job, JobState.FAILED, "BackoffLimitExceeded", now)
            else:
                delay = self.pod_backoff_s * 2 ** (job.failures - 1)
                job.retry_at = now + min(delay, POD_FAILURE_BACKOFF_CAP_S)

    def _check_deadline(self, job: LocalJob, now: float) -> None:
        deadline = self.template.active_deadline_s
        if job.state is not JobState.RUNNING:
            return
        if deadline is not None and job.term_sent_at is None and now - job.started_at >= deadline:
            if job.alive:
                self._terminate(job, now, "DeadlineExceeded")
            else:
                self._finish(job, JobState.FAILED, "DeadlineExceeded", now)
        grace = self.template.grace_period_s
        if job.term_sent_at is not None and job.alive and now - job.term_sent_at >= grace:
            _signal(job, signal.SIGKILL)

    def _check_retry(self, job: LocalJob, now: float) -> None:
        if job.state is JobState.RUNNING and job.retry_at is not None and now >= job.retry_at:
            logger.info(
                "job %s: new pod after %d failure(s)",
                job.name,
                job.failures,
                extra={"job": job.name, "failures": job.failures},
            )
            self._launch(job)

    def _probe(self, job: LocalJob, now: float) -> None:
        probe = self.template.readiness
        if not job.alive or job.ready or now < job.next_probe_at:
            return
        if probe is None:
            job.ready = True
            return
        job.next_probe_at = now + probe.period_s
        mounts = self.mounts(job)
        command = [localize(arg, mounts) for arg in probe.command]
        try:
            result = subprocess.run(command, timeout=probe.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return
        job.ready = result.returncode == 0

    def _terminate(self, job: LocalJob, now: float, reason: str) -> None:
        job.term_sent_at, job.reason = now, reason
        _signal(job, signal.SIGTERM)

    def _finish(self, job: LocalJob, state: JobState, reason: str, now: float) -> None:
        job.state, job.reason, job.finished_at = state, reason, now
        job.retry_at, job.ready = None, False
        logger.info(
            "job %s %s (%s)",
            job.name,
            state.value.lower(),
            reason,
            extra={"job": job.name, "state": state, "reason": reason},
        )

    def _trim_history(self) -> None:
        limits = {
            JobState.COMPLETE: self.manifest.successful_jobs_history_limit,
            JobState.FAILED: self.manifest.failed_jobs_history_limit,
        }
        for state, limit in limits.items():
            finished = sorted(
                (job for job in self.jobs if job.state is state),
                key=lambda job: job.finished_at or 0.0,
            )
            for job in finished[: max(len(finished) - limit, 0)]:
                self.jobs.remove(job)
                shutil.rmtree(job.workdir, ignore_errors=True)


def _signal(job: LocalJob, signum: signal.Signals) -> None:
    if job.process is None:
        return
    try:
        os.killpg(job.process.pid, signum)
    except ProcessLookupError:
        return


def _token() -> str:
    return "".join(secrets.choice(NAME_ALPHABET) for _ in range(5))
