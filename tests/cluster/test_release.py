"""The chart on the real control plane (issue 12): helm install with the release's own Redis
(ACL users, passwords that need URL-escaping) and PostgreSQL; the migration hook through the
Job controller; the real KEDA operator polling as the `keda` user and starting Jobs in waves
exactly as the `accurate` formula says (and as processor/scaledjob/scaling.py decides from the
same inputs); every vote recorded once; helm test; helm uninstall leaving nothing behind.

Scenario output (each poll: lag, running, pending, Jobs created, the runner's decision) is
printed and written to test-output/cluster/."""

from __future__ import annotations

import asyncio
import calendar
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from processor.scaledjob.scaling import ReplicaBounds, ScalingStrategy, TriggerMetric, decide
from tests.support.cluster import (
    Cluster,
    Poll,
    ReleaseServers,
    keda_lines,
    keda_polls,
    wait_for,
)
from tests.support.clusterrelease import ingest_address, post_votes, recorded, votes_recorded
from tests.support.paths import ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

NAMESPACE, RELEASE = "votes", "votes"
SCALEDJOB = f"{RELEASE}-vote-pipeline-processor"
LAG_COUNT, MAX_REPLICAS = 50, 10
WAVES = (900, 1300, 500)
OUTPUT = ROOT / "test-output" / "cluster"


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, servers: ReleaseServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    values = servers.values(processor={"lagCount": LAG_COUNT, "maxReplicaCount": MAX_REPLICAS})
    path = tmp_path_factory.mktemp("values") / "values.json"
    path.write_text(json.dumps(values))
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    values["keda_log_offset"] = cluster.keda_log().stat().st_size
    chart = os.environ.get("CLUSTER_CHART", str(ROOT / "helm"))  # e.g. another checkout's
    cluster.helm(
        "4",
        "install",
        RELEASE,
        chart,
        "-n",
        NAMESPACE,
        "-f",
        str(path),
        "--wait",
        "--timeout",
        "10m",
    )
    yield values
    cluster.helm("4", "uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)


def runner_decision(poll: Poll) -> int:
    strategy = ScalingStrategy(strategy="accurate", pending_pod_conditions=("Ready",))
    metric = TriggerMetric(poll.queue_length, poll.target, active=poll.queue_length > 0)
    bounds = ReplicaBounds(min_replica_count=0, max_replica_count=MAX_REPLICAS)
    return decide(strategy, bounds, [metric], poll.running, poll.pending).create


def first_job_after(cluster: Cluster, seen: set[str], began: float) -> str:
    """Seconds from `began` to the creation of the first Job not in `seen` (the API server
    stamps whole seconds, hence the rounding)."""
    created = [
        stamp(j["metadata"]["creationTimestamp"])
        for j in cluster.objects("jobs", NAMESPACE)
        if j["metadata"]["name"] not in seen
    ]
    return f"{min(created) - began:.0f}" if created else "none"


def stamp(text: str) -> float:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def record(name: str, text: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / name).write_text(text + "\n")
    print(text)


def write_table(polls: list[Poll], name: str) -> str:
    lines = ["poll  lag    running  pending  created  runner"]
    for index, poll in enumerate(polls):
        lines.append(
            f"{index:>4}  {poll.queue_length:>5.0f}  {poll.running:>7}  {poll.pending:>7}"
            f"  {poll.created:>7}  {runner_decision(poll):>6}"
        )
    table = "\n".join(lines)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / name).write_text(table + "\n")
    print(table)
    return table


def test_a_install_migrates_and_keda_polls_as_the_keda_user(
    cluster: Cluster, servers: ReleaseServers, release: dict[str, Any]
) -> None:
    assert asyncio.run(recorded(servers.pg_url("app"))) == (0, 0, 0), "migrated, empty"
    scaledjob = cluster.objects("scaledjobs", NAMESPACE)[0]
    ready = {c["type"]: c["status"] for c in scaledjob["status"]["conditions"]}
    assert ready["Ready"] == "True", scaledjob["status"]
    since = release["keda_log_offset"]
    wait_for("KEDA's first poll", lambda: keda_polls(cluster.keda_log(), SCALEDJOB, since))
    errors = [
        line
        for line in keda_lines(cluster.keda_log(), since)
        if SCALEDJOB in line and '"level":"error"' in line
    ]
    assert errors == [], errors[:3]
    admin = redis.Redis.from_url(servers.admin_url())
    assert admin.acl_log() == [], "an ACL user was refused (WRONGPASS or NOPERM)"
    keda_clients = [c for c in admin.client_list() if c.get("user") == "keda"]
    assert keda_clients, "KEDA does not poll as the keda user"


def test_b_waves_start_jobs_by_the_accurate_formula_and_record_every_vote_once(
    cluster: Cluster, servers: ReleaseServers, release: dict[str, Any]
) -> None:
    base = ingest_address(cluster, NAMESPACE)
    before = len(keda_polls(cluster.keda_log(), SCALEDJOB))
    accepted: list[str] = []
    timings = ["wave  votes  first-Job-after-s  recorded-after-s"]
    for wave in WAVES:
        seen = {j["metadata"]["name"] for j in cluster.objects("jobs", NAMESPACE)}
        began = time.time()
        accepted += asyncio.run(post_votes(base, wave))
        wanted = len(accepted)
        wait_for(f"{wanted} votes recorded", lambda: votes_recorded(servers) >= wanted)  # noqa: B023
        drained = time.time() - began
        timings.append(f"{len(timings):>4}  {wave:>5}  {first_job_after(cluster, seen, began):>17}"
                       f"  {drained:>16.1f}")  # fmt: skip
    record("wave-times.txt", "\n".join(timings))
    events, ids, tally = asyncio.run(recorded(servers.pg_url("app")))
    assert (events, ids, tally) == (len(accepted),) * 3, "a vote lost or counted twice"
    wait_for(
        "every Job finished",
        lambda: all(
            j["status"].get("succeeded") or j["status"].get("failed")
            for j in cluster.objects("jobs", NAMESPACE)
        ),
    )
    admin = redis.Redis.from_url(servers.admin_url(), decode_responses=True)
    group = admin.xinfo_groups("votes")[0]
    assert (group["lag"], group["pending"]) == (0, 0), group
    polls = keda_polls(cluster.keda_log(), SCALEDJOB)[before:]
    table = write_table(polls, "waves.txt")
    assert sum(p.created for p in polls) > 1, table
    assert [p.created for p in polls] == [runner_decision(p) for p in polls], table


def test_e_helm_test_passes_and_uninstall_removes_the_release(
    cluster: Cluster, servers: ReleaseServers, release: dict[str, Any]
) -> None:
    done = cluster.helm("4", "test", RELEASE, "-n", NAMESPACE, "--timeout", "5m")
    assert "Phase:          Succeeded" in done.stdout or "Succeeded" in done.stdout, done.stdout
    cluster.helm("4", "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "5m")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    kinds = "all,configmaps,secrets,serviceaccounts,scaledjobs,triggerauthentications,cronjobs"

    def left() -> list[str]:
        found = cluster.objects(kinds, NAMESPACE, "-l", selector)
        return [f"{o['kind']}/{o['metadata']['name']}" for o in found]

    # Jobs and pods go through the garbage collector after their owners: give it a moment.
    wait_for("the release's objects gone", lambda: not left(), timeout_s=120)
