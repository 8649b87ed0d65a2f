"""The chart's life cycle on the real control plane under helm 3 (issue 12, scenarios c and d;
test_release.py runs a, b and e under helm 4): install; `helm upgrade` mid-drain with a new
image tag and a changed setting; a Job pod SIGKILLed mid-batch; helm test; uninstall.

"Mid-drain" and "mid-batch" are made deterministic, not timed: the test holds a SHARE lock on
vote_events, so every Job that has read a batch waits on its INSERT with the batch pending
(XPENDING > 0) until the test lets go. The new image tag needs no second build: the node agent
runs every tag of the project's image repository from the one virtualenv it was started with
(docs/real-control-plane.md), so the tag shows in the Jobs' pod specs only."""

from __future__ import annotations

import asyncio
import calendar
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from processor.migrate import MIGRATION_LOCK_KEY
from tests.support.cluster import Cluster, ReleaseServers, wait_for
from tests.support.clusterrelease import (
    finish,
    finished,
    ingest_address,
    install,
    job_env,
    post_votes,
    processor_jobs,
    recorded,
    upgrade_started,
    votes_recorded,
)
from tests.support.databases import TEST_PG_ADMIN_URL, dsn_with_database
from tests.support.paths import ROOT
from tests.support.tablelock import advisory_lock, share_lock

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

HELM = "3"
NAMESPACE, RELEASE = "votes-helm3", "votes"
OUTPUT = ROOT / "test-output" / "cluster"
NEW_BATCH_SIZE = "377"


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, servers: ReleaseServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    # Every finished Job is kept, so that the test reads the status of each (KEDA deletes
    # beyond the history limits: the default 3 had removed the pre-upgrade Jobs).
    limits = {"successfulJobsHistoryLimit": 100, "failedJobsHistoryLimit": 100}
    # maxReplicaCount leaves room for new Jobs while the test holds every old one: a wave of
    # 400 at lagCount 50 starts at most 8 (accurate: Jobs not Ready yet are subtracted), and
    # with a maximum of 4 a run had every slot taken by held Jobs, so no new Job could start.
    values = servers.values(processor={"lagCount": 50, "maxReplicaCount": 20, **limits})
    path = tmp_path_factory.mktemp("values") / "values.json"
    install(cluster, HELM, RELEASE, NAMESPACE, values, path)
    values["_path"] = str(path)
    yield values
    cluster.helm(HELM, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)


def admin_url(servers: ReleaseServers) -> str:
    return dsn_with_database(TEST_PG_ADMIN_URL, servers.database)


def locked(servers: ReleaseServers) -> Any:
    return share_lock(admin_url(servers), "vote_events")


def migration_running(cluster: Cluster) -> bool:
    pods = cluster.objects("pods", NAMESPACE, "-l", "app.kubernetes.io/component=migration")
    return any(p["status"].get("phase") == "Running" for p in pods)


def scaledjob_batch_size(cluster: Cluster) -> str | None:
    scaledjob = cluster.objects("scaledjobs", NAMESPACE)[0]
    return job_env({"spec": scaledjob["spec"]["jobTargetRef"]}, "BATCH_SIZE")


def pending(servers: ReleaseServers) -> int:
    admin = redis.Redis.from_url(servers.admin_url(), decode_responses=True)
    groups = admin.xinfo_groups("votes")
    return int(groups[0]["pending"]) if groups else 0


def stamp(text: str) -> float:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def migration_completed_at(cluster: Cluster, since: float) -> float:
    """When the Job controller reported the migration hook Job complete, after `since`."""
    events = cluster.objects("events", NAMESPACE)
    times = [
        stamp(e.get("lastTimestamp") or e["eventTime"][:19] + "Z")
        for e in events
        if e["involvedObject"]["kind"] == "Job"
        and "migration" in e["involvedObject"]["name"]
        and e["reason"] == "Completed"
    ]
    later = [t for t in times if t >= since]
    assert later, f"no migration Job completed after the upgrade began: {times}"
    return max(later)


def helm_wrote_at(obj: dict[str, Any]) -> float:
    """The last time helm changed `obj` (its managedFields entry)."""
    entries = [m for m in obj["metadata"]["managedFields"] if m["manager"].startswith("helm")]
    return max(stamp(m["time"]) for m in entries)


def record(name: str, text: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / name).write_text(text + "\n")
    print(text)


def reconcile(servers: ReleaseServers, accepted: int) -> None:
    wait_for(f"{accepted} votes recorded", lambda: votes_recorded(servers) >= accepted)
    assert asyncio.run(recorded(servers.pg_url("app"))) == (accepted,) * 3, "lost or doubled"
    wait_for("the group drained", lambda: pending(servers) == 0)


def test_c_upgrade_mid_drain_migrates_first_lets_old_jobs_finish_and_new_jobs_take_the_new_setting(
    cluster: Cluster, servers: ReleaseServers, release: dict[str, Any]
) -> None:
    accepted = 0
    with locked(servers):
        accepted += len(asyncio.run(post_votes(ingest_address(cluster, NAMESPACE), 400)))
        wait_for("Jobs holding read votes", lambda: pending(servers) > 0)
        before = {j["metadata"]["name"] for j in processor_jobs(cluster, NAMESPACE)}
        began = time.time() - 1  # the API server stamps whole seconds
        values = {**release, "image": {"repository": "vote-pipeline", "tag": "dev-upgraded"}}
        values["processor"] = {**values["processor"], "batchSize": int(NEW_BATCH_SIZE)}
        values.pop("_path")
        # The test holds the migration lock: the hook Job runs and waits, and meanwhile the
        # ScaledJob must still be the old one (helm applies the release after its hooks).
        with advisory_lock(admin_url(servers), MIGRATION_LOCK_KEY):
            helm = upgrade_started(
                cluster, HELM, RELEASE, NAMESPACE, values, Path(release["_path"])
            )
            wait_for("the migration hook running", lambda: migration_running(cluster))
            assert scaledjob_batch_size(cluster) != NEW_BATCH_SIZE, "ScaledJob changed before"
        finish(helm)
        assert scaledjob_batch_size(cluster) == NEW_BATCH_SIZE
        shown = cluster.kubectl(
            "get", "scaledjobs", "-n", NAMESPACE, "-o", "json", "--show-managed-fields"
        )
        scaledjob = json.loads(shown)["items"][0]
        migrated = migration_completed_at(cluster, began)
        changed = helm_wrote_at(scaledjob)
        record(
            "upgrade-order.txt",
            f"upgrade began at {began + 1:.0f}; migration hook Job completed"
            f" +{migrated - began - 1:.0f} s;"
            f" ScaledJob changed by helm +{changed - began - 1:.0f} s",
        )
        assert migrated <= changed, "the ScaledJob changed before the migration"
        at_upgrade = {j["metadata"]["name"] for j in processor_jobs(cluster, NAMESPACE)}
        assert before <= at_upgrade, "the upgrade deleted a running Job (rollout not gradual)"
        accepted += len(asyncio.run(post_votes(ingest_address(cluster, NAMESPACE), 400)))

        def new_jobs() -> list[dict[str, Any]]:
            jobs = processor_jobs(cluster, NAMESPACE)
            return [j for j in jobs if j["metadata"]["name"] not in at_upgrade]

        wait_for("a Job of the new generation", new_jobs)
    reconcile(servers, accepted)
    wait_for("every Job finished", lambda: all(map(finished, processor_jobs(cluster, NAMESPACE))))
    check_generations(processor_jobs(cluster, NAMESPACE), before, at_upgrade)


def upgraded(job: dict[str, Any]) -> bool:
    """Whether `job` has the upgrade's setting; its image tag must agree (one template each)."""
    batch = job_env(job, "BATCH_SIZE") == NEW_BATCH_SIZE
    tagged = job["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":dev-upgraded")
    assert batch == tagged, f"{job['metadata']['name']} mixes the two generations"
    return batch


def check_generations(jobs: list[dict[str, Any]], before: set[str], at_upgrade: set[str]) -> None:
    """Jobs running at the upgrade were kept and succeeded; Jobs created after it (not seen
    when helm upgrade returned) have the new setting. A Job KEDA created between the snapshot
    `before` and the ScaledJob's change may be of either generation."""
    lines = ["job  running-at-upgrade  BATCH_SIZE  image  succeeded"]
    for job in jobs:
        name, image = (
            job["metadata"]["name"],
            job["spec"]["template"]["spec"]["containers"][0]["image"],
        )
        lines.append(
            f"{name}  {name in before}  {job_env(job, 'BATCH_SIZE')}  {image}"
            f"  {job['status'].get('succeeded', 0)}"
        )
    record("upgrade.txt", "\n".join(lines))
    names = {j["metadata"]["name"] for j in jobs}
    assert before, "no Job was running at the upgrade"
    assert before <= names, "an old Job was deleted"
    assert names - at_upgrade, "no Job was created after the upgrade"
    for job in jobs:
        name = job["metadata"]["name"]
        if name in before:
            assert not upgraded(job), name
            assert job["status"].get("succeeded") == 1, (name, job["status"])
        elif name not in at_upgrade:
            assert upgraded(job), name


def job_process(job: str) -> int:
    """The PID of the local process the node agent runs for `job`'s pod (JOB_NAME in its env)."""
    wanted = f"JOB_NAME={job}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                env = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if wanted in env and b"-m\0processor" in (entry / "cmdline").read_bytes():
                return int(entry.name)
    raise AssertionError(f"no process of Job {job}")


def job_pods(cluster: Cluster, job: str) -> list[dict[str, Any]]:
    return cluster.objects("pods", NAMESPACE, "-l", f"batch.kubernetes.io/job-name={job}")


def test_d_a_job_pod_killed_mid_batch_is_retried_under_the_job_name_and_loses_nothing(
    cluster: Cluster, servers: ReleaseServers, release: dict[str, Any]
) -> None:
    accepted = votes_recorded(servers)
    known = {j["metadata"]["name"] for j in processor_jobs(cluster, NAMESPACE)}
    with locked(servers):
        accepted += len(asyncio.run(post_votes(ingest_address(cluster, NAMESPACE), 300)))
        admin = redis.Redis.from_url(servers.admin_url(), decode_responses=True)

        def holder() -> str | None:
            for consumer in admin.xinfo_consumers("votes", "processors"):
                if consumer["pending"] and consumer["name"] not in known:
                    return str(consumer["name"])
            return None

        job = wait_for("a new Job holding read votes", holder)
        held = next(c for c in admin.xinfo_consumers("votes", "processors") if c["name"] == job)
        os.kill(job_process(job), signal.SIGKILL)
        wait_for("the Job's pod retried", lambda: len(job_pods(cluster, job)) >= 2)
    reconcile(servers, accepted)

    def the_job() -> dict[str, Any]:
        return next(j for j in processor_jobs(cluster, NAMESPACE) if j["metadata"]["name"] == job)

    # Its first pod's failure counts in status.failed; the retry's success ends the Job.
    wait_for("the Job succeeded", lambda: the_job()["status"].get("succeeded"))
    pods = job_pods(cluster, job)
    exits = [(p["metadata"]["name"], p["status"]["phase"]) for p in pods]
    record(
        "kill.txt",
        f"job {job}: held {held['pending']} read votes when SIGKILLed; pods {exits}; "
        f"{accepted} votes recorded once each",
    )
    phases = sorted(p["status"]["phase"] for p in pods)
    assert phases == ["Failed", "Succeeded"], exits
    final = the_job()
    assert final["status"].get("succeeded") == 1, final["status"]


def test_e_helm_test_and_uninstall_under_helm_3(
    cluster: Cluster, servers: ReleaseServers, release: dict[str, Any]
) -> None:
    before = asyncio.run(recorded(servers.pg_url("app")))
    cluster.helm(HELM, "test", RELEASE, "-n", NAMESPACE, "--timeout", "5m")
    assert asyncio.run(recorded(servers.pg_url("app"))) == before, "helm test changed the tally"
    cluster.helm(HELM, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "5m")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    kinds = "all,configmaps,secrets,serviceaccounts,scaledjobs,triggerauthentications,cronjobs"
    wait_for(
        "the release's objects gone",
        lambda: not cluster.objects(kinds, NAMESPACE, "-l", selector),
        timeout_s=120,
    )
