"""`python -m processor.scaledjob keda/scaledjob.yaml`: KEDA's ScaledJob loop on one machine.

Every pollingInterval: reconcile the local Jobs, read each trigger's metric as KEDA does
(`lagmetric`), decide with KEDA's formula (`scaling`), start that many Jobs (`localjobs`) and
print one line: metric, running, pending, created.
SIGINT/SIGTERM: start nothing more, SIGTERM the running Jobs and wait for them (SIGKILL after
terminationGracePeriodSeconds); a second signal kills them at once.

The trigger's `address` is a cluster hostname: locally the metric is read from --redis-url,
else REDIS_URL, else the default; Jobs get the same REDIS_URL unless the runner's env sets it.
REDIS_MODE (and its sentinel variables) select the client; with VOTE_SHARDS=N the runner runs
one ScaledJob per shard (processor.scaledjob.shards), all in one loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from redis.exceptions import RedisError

from processor.scaledjob.lagmetric import LagReading, read_lag, trigger_metric
from processor.scaledjob.localjobs import LocalJobs
from processor.scaledjob.manifest import ManifestError, ScaledJobManifest, load_manifest
from processor.scaledjob.metricclient import AnyRedis, metric_client
from processor.scaledjob.podenv import check_env_sources
from processor.scaledjob.scaling import Decision, decide
from processor.scaledjob.shards import per_shard
from votecontract import shared_env
from votecontract.environment import SettingsError, env_str, redact_url
from votecontract.jsonlog import configure_logging
from votecontract.names import ENV_LOG_FORMAT, ENV_REDIS_URL
from votecontract.topology import RedisTopology

# Named, not __name__: run with -m this module is __main__.
logger = logging.getLogger("processor.scaledjob")


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    manifest_path: Path
    redis_url: str = field(repr=False)  # holds credentials
    polling_interval_s: float | None = None
    command: tuple[str, ...] | None = None
    pod_backoff_s: float = 10.0
    workdir: Path | None = None
    topology: RedisTopology = field(default_factory=RedisTopology)


def parse_args(argv: Sequence[str], env: dict[str, str]) -> RunnerSettings:
    parser = argparse.ArgumentParser(
        prog="python -m processor.scaledjob", description="Run a KEDA ScaledJob locally."
    )
    parser.add_argument("manifest", type=Path, help="ScaledJob YAML, e.g. keda/scaledjob.yaml")
    parser.add_argument("--polling-interval", type=float, help="seconds; overrides the manifest")
    parser.add_argument("--redis-url", help="Redis of the trigger (default: $REDIS_URL)")
    parser.add_argument("--command", help="Job command line; default: the container command")
    parser.add_argument(
        "--pod-backoff", type=float, default=10.0, help="first pod retry delay in s (k8s: 10)"
    )
    parser.add_argument("--workdir", type=Path, help="where Job directories go (default: temp)")
    args = parser.parse_args(argv)
    if args.polling_interval is not None and args.polling_interval <= 0:
        parser.error("--polling-interval must be > 0")
    return RunnerSettings(
        manifest_path=args.manifest,
        redis_url=args.redis_url or shared_env.redis_url(env),
        polling_interval_s=args.polling_interval,
        command=tuple(shlex.split(args.command)) if args.command else None,
        pod_backoff_s=max(args.pod_backoff, 0.0),
        workdir=args.workdir,
        topology=shared_env.redis_topology(env),
    )


def decision_line(name: str, readings: Sequence[LagReading], decision: Decision) -> str:
    metric = ",".join(str(reading.metric) for reading in readings)
    line = (
        f"{name}: metric={metric} active={'yes' if decision.active else 'no'}"
        f" running={decision.running} pending={decision.pending}"
        f" max_scale={decision.max_scale} created={decision.create}"
    )
    if any(reading.lag_unknown for reading in readings):
        line += " (lag is NULL: KEDA's trigger stays silent; see docs on XDEL)"
    return line


class ScaledJobRunner:
    """One ScaledJob's polling loop over LocalJobs."""

    def __init__(
        self,
        manifest: ScaledJobManifest,
        jobs: LocalJobs,
        client: AnyRedis,
        polling_interval_s: float,
        out: TextIO = sys.stdout,
    ) -> None:
        self.manifest = manifest
        self.jobs = jobs
        self.client = client
        self.polling_interval_s = polling_interval_s
        self.out = out

    async def poll_once(self) -> Decision | None:
        """One polling interval: measure, decide, start Jobs, print the line."""
        self.jobs.reconcile()
        running, pending = self.jobs.counts()
        try:
            readings = [
                await read_lag(self.client, trigger.stream, trigger.group)
                for trigger in self.manifest.triggers
            ]
        except RedisError as error:
            print(
                f"{self.manifest.name}: metric=error ({type(error).__name__}) "
                f"running={running} pending={pending} created=0",
                file=self.out,
                flush=True,
            )
            return None
        metrics = [
            trigger_metric(t, r) for t, r in zip(self.manifest.triggers, readings, strict=True)
        ]
        decision = decide(self.manifest.strategy, self.manifest.bounds, metrics, running, pending)
        for _ in range(decision.create):
            self.jobs.start()
        print(decision_line(self.manifest.name, readings, decision), file=self.out, flush=True)
        return decision

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll_once()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.polling_interval_s)
            except TimeoutError:
                continue

    async def drain(self, killed: asyncio.Event) -> None:
        """Stop starting Jobs; wait for running ones within their grace period."""
        self.jobs.shutdown()
        while any(job.alive for job in self.jobs.unfinished):
            if killed.is_set():
                self.jobs.kill_all()
            await asyncio.sleep(0.05)
            self.jobs.reconcile()
        self.jobs.reconcile()


def stop_events() -> tuple[asyncio.Event, asyncio.Event]:
    """(stop, killed): the first SIGINT/SIGTERM sets stop, the next one killed."""
    stop, killed = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        (killed if stop.is_set() else stop).set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    return stop, killed


async def serve(
    settings: RunnerSettings,
    manifests: Sequence[ScaledJobManifest],
    workroot: Path,
    host_env: dict[str, str],
) -> None:
    """Run the ScaledJob of every shard until a signal, then drain them all."""
    client = metric_client(settings.redis_url, settings.topology)
    runners = [
        ScaledJobRunner(
            manifest,
            LocalJobs(
                manifest,
                workroot,
                command=settings.command,
                host_env=host_env,
                pod_backoff_s=settings.pod_backoff_s,
            ),
            client,
            settings.polling_interval_s or manifest.polling_interval_s,
        )
        for manifest in manifests
    ]
    stop, killed = stop_events()
    for runner in runners:
        logger.info(
            "running ScaledJob %s: metric from %s every %ss, Jobs run: %s",
            runner.manifest.name,
            redact_url(settings.redis_url),
            runner.polling_interval_s,
            shlex.join(runner.jobs.command),
        )
    try:
        await asyncio.gather(*(runner.run(stop) for runner in runners))
        await asyncio.gather(*(runner.drain(killed) for runner in runners))
    finally:
        for runner in runners:
            runner.jobs.kill_all()
        await client.aclose()
    for runner in runners:
        print(f"{runner.manifest.name}: stopped, no Job running", file=sys.stdout, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m processor.scaledjob`."""
    env = dict(os.environ)
    try:
        configure_logging(env_str(env, ENV_LOG_FORMAT, "text"))
        settings = parse_args(sys.argv[1:] if argv is None else argv, env)
        manifest = load_manifest(settings.manifest_path)
        env.setdefault(ENV_REDIS_URL, settings.redis_url)
        missing = check_env_sources(manifest, env)
        manifests = per_shard(manifest, settings.topology, env)
    except (SettingsError, ManifestError) as error:
        print(f"scaledjob: {error}", file=sys.stderr)
        return 2
    if missing:
        logger.warning("not in the runner's env, Jobs use their defaults: %s", ", ".join(missing))
    if settings.workdir is not None:
        settings.workdir.mkdir(parents=True, exist_ok=True)
        asyncio.run(serve(settings, manifests, settings.workdir, env))
        return 0
    with tempfile.TemporaryDirectory(prefix=f"{manifest.name}-") as workroot:
        asyncio.run(serve(settings, manifests, Path(workroot), env))
    return 0
