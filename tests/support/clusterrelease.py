"""A release of the chart on the real control plane, as the `cluster` tests drive it: install
with values of the release's own servers, ingest's pod address, votes posted to it, what
PostgreSQL recorded, and the processor Jobs with the settings they were created with."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from loadtest.ledger import EntryId
from tests.support.cluster import Cluster, ReleaseServers, wait_for
from tests.support.paths import ROOT


def install(
    cluster: Cluster, helm: str, release: str, namespace: str, values: dict[str, Any], path: Path
) -> None:
    """`helm install --wait` of the chart (CLUSTER_CHART: another checkout's) with `values`."""
    path.write_text(json.dumps(values))
    cluster.kubectl("create", "namespace", namespace, check=False)
    chart = os.environ.get("CLUSTER_CHART", str(ROOT / "helm"))
    cluster.helm(
        helm, "install", release, chart, "-n", namespace, "-f", str(path), "--wait",
        "--timeout", "10m",
    )  # fmt: skip


@contextmanager
def installed(
    cluster: Cluster, helm: str, release: str, namespace: str, values: dict[str, Any], path: Path
) -> Iterator[dict[str, Any]]:
    """`install`ed for the block, then uninstalled and its namespace deleted; the values come
    with `keda_log_offset`, where KEDA's log stood before the install."""
    offset = cluster.keda_log().stat().st_size
    install(cluster, helm, release, namespace, values, path)
    try:
        yield values | {"keda_log_offset": offset}
    finally:
        cluster.helm(helm, "uninstall", release, "-n", namespace, "--wait", check=False)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def upgrade_started(
    cluster: Cluster, helm: str, release: str, namespace: str, values: dict[str, Any], path: Path
) -> subprocess.Popen[str]:
    """`helm upgrade --wait` in the background; the caller waits for it (`finish`)."""
    path.write_text(json.dumps(values))
    chart = os.environ.get("CLUSTER_CHART", str(ROOT / "helm"))
    return cluster.helm_started(
        helm, "upgrade", release, chart, "-n", namespace, "-f", str(path), "--wait",
        "--timeout", "10m",
    )  # fmt: skip


def finish(helm: subprocess.Popen[str], timeout_s: float = 600) -> None:
    output, _ = helm.communicate(timeout=timeout_s)
    assert helm.returncode == 0, output


def ingest_address(cluster: Cluster, namespace: str) -> str:
    pods = cluster.objects("pods", namespace, "-l", "app.kubernetes.io/component=ingest")
    ready = [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]
    assert ready, "no Ready ingest pod"
    return f"http://{ready[0]['status']['podIP']}:8000"


async def post_votes(base: str, count: int, *, unavailable_ok: bool = False) -> list[str]:
    """`count` votes of distinct voters; the IDs of those answered 202. Every answer must be
    202, or with `unavailable_ok` (Redis failing over) 503."""
    accepted: list[str] = []
    limit = asyncio.Semaphore(32)
    allowed = {202, 503} if unavailable_ok else {202}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def one() -> None:
            async with limit:
                body = {"option": "cats", "voter_id": uuid.uuid4().hex}
                response = await http.post("/vote", json=body)
                assert response.status_code in allowed, response.text
                if response.status_code == 202:
                    accepted.append(response.json()["id"])

        await asyncio.gather(*(one() for _ in range(count)))
    return accepted


async def recorded(url: str) -> tuple[int, int, int]:
    """(events, distinct entry IDs, tally total)."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM vote_events) AS events,"
            " (SELECT count(DISTINCT (entry_ms, entry_seq)) FROM vote_events) AS ids,"
            " (SELECT coalesce(sum(votes), 0) FROM tally) AS tally"
        )
        return int(row["events"]), int(row["ids"]), int(row["tally"])
    finally:
        await conn.close()


async def unrecorded(url: str, ids: list[str]) -> list[str]:
    """Those of the stream IDs `ids` that PostgreSQL has no event for."""
    parsed = [EntryId.parse(text) for text in ids]
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetch(
            "SELECT e.entry_ms, e.entry_seq FROM vote_events e"
            " JOIN unnest($1::bigint[], $2::bigint[]) AS a(ms, seq)"
            " ON e.entry_ms = a.ms AND e.entry_seq = a.seq",
            [i.ms for i in parsed],
            [i.seq for i in parsed],
        )
    finally:
        await conn.close()
    return sorted(set(ids) - {f"{row[0]}-{row[1]}" for row in found})


def votes_recorded(servers: ReleaseServers) -> int:
    return asyncio.run(recorded(servers.pg_url("app")))[0]


def post_and_record_once(cluster: Cluster, servers: ReleaseServers, namespace: str) -> int:
    """300 votes posted to the release's ingest, every one answered 202; until each is
    recorded exactly once (nothing else in the database) and every Job has finished.
    Returns the count."""
    accepted = len(asyncio.run(post_votes(ingest_address(cluster, namespace), 300)))
    wait_for(f"{accepted} votes recorded", lambda: votes_recorded(servers) >= accepted)
    assert asyncio.run(recorded(servers.pg_url("app"))) == (accepted,) * 3, "lost or doubled"
    wait_for("every Job finished", lambda: all(map(finished, processor_jobs(cluster, namespace))))
    return accepted


def job_env(job: dict[str, Any], name: str) -> str | None:
    """The literal value of env `name` in the Job's processor container."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    found = [e.get("value") for e in container.get("env", []) if e["name"] == name]
    return found[0] if found else None


def processor_jobs(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return cluster.objects("jobs", namespace, "-l", "app.kubernetes.io/component=processor")


def finished(job: dict[str, Any]) -> bool:
    status = job.get("status", {})
    return bool(status.get("succeeded") or status.get("failed"))
