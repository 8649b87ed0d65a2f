"""The real control plane (scripts/controlplane-up.sh) with the node agent, for the `cluster`
tests: a Redis of the release's own with the shipped ACL users and passwords that need
URL-escaping, a PostgreSQL database with a migration and an application role, helm 3 and 4,
and KEDA's own account of every poll, read from its debug log."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

from tests.support.certs import TlsFiles
from tests.support.databases import TEST_PG_ADMIN_URL, admin_execute, dsn_with_database
from tests.support.paths import ROOT
from tests.support.redisacl import ROLES, render_acl
from tests.support.servers import ThrowawayRedis, free_port
from votecontract.names import StreamNames

HELM_VERSIONS = {"3": "3.17.2", "4": "4.1.4"}
IMAGE = "vote-pipeline"
# Every character RFC 3986 reserves, and a space: KEDA must get exactly what redis-py decodes.
RESERVED = "@:/?#[]%!$&'()*+,;= "
WAIT_S = 240.0
TLS_MOUNT = "/etc/vote-pipeline/tls"  # the chart's tls.mountPath default


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    """`check()`'s first truthy result, polled; fails naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@dataclass
class Cluster:
    state: Path
    agent: subprocess.Popen[bytes] | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(self, *args: str, check: bool = True) -> str:
        kubectl = self.state.parent / "bin" / "kubectl"
        binary = kubectl if kubectl.exists() else Path(_bin_dir()) / "kubectl"
        done = subprocess.run(
            [str(binary), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
        return done.stdout

    def objects(self, kind: str, namespace: str, *selector: str) -> list[dict[str, Any]]:
        text = self.kubectl("get", kind, "-n", namespace, *selector, "-o", "json")
        items: list[dict[str, Any]] = json.loads(text)["items"]
        return items

    def helm(
        self, version: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        binary = Path.home() / ".cache/vote-pipeline/helm" / HELM_VERSIONS[version] / "helm"
        done = subprocess.run(
            [str(binary), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"helm {version} {' '.join(args)}:\n{done.stdout}\n{done.stderr}")
        return done

    def helm_started(self, version: str, *args: str) -> subprocess.Popen[str]:
        """helm running in the background, e.g. an upgrade held at its hook by the test."""
        binary = Path.home() / ".cache/vote-pipeline/helm" / HELM_VERSIONS[version] / "helm"
        return subprocess.Popen(
            [str(binary), *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def keda_log(self) -> Path:
        return self.state / "logs" / "keda-operator.log"


def _bin_dir() -> str:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/build-control-plane.sh")],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def start_cluster(state: Path) -> Cluster:
    """A fresh control plane (debug KEDA log) and the node agent, its Node Ready."""
    env = {**os.environ, "KEDA_LOG_LEVEL": "debug"}
    subprocess.run(
        ["bash", str(ROOT / "scripts/controlplane-up.sh"), str(state)],
        env=env,
        check=True,
        timeout=1800,
    )
    cluster = Cluster(state)
    log = (state / "node-agent.log").open("wb")
    cluster.agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "processor.nodeagent",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--workdir",
            str(state / "agent"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()  # the agent keeps its own descriptor
    wait_for(
        "the node Ready",
        lambda: (
            "True"
            in cluster.kubectl(
                "get",
                "node",
                "local-node",
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            )
        ),
    )
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    if cluster.agent is not None:
        cluster.agent.terminate()
        try:
            cluster.agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.agent.kill()
    subprocess.run(
        ["bash", str(ROOT / "scripts/controlplane-down.sh"), str(cluster.state)],
        check=False,
        timeout=120,
    )


@dataclass
class ReleaseServers:
    """The release's Redis (ACL users, AOF) and PostgreSQL database and roles."""

    redis: ThrowawayRedis
    database: str
    passwords: dict[str, str] = field(default_factory=dict)
    names: StreamNames = field(default_factory=StreamNames)
    # TLS only (no plain port), server certificate of this private CA; None: plain TCP.
    ca: Path | None = None

    def redis_url(self, role: str) -> str:
        """A pod's URL: with TLS, the CA where the chart mounts tls.secretName."""
        secret = quote(self.passwords[role], safe="")
        if self.ca is None:
            return f"redis://{role}:{secret}@127.0.0.1:{self.redis.port}/0"
        query = f"?ssl_ca_certs={quote(TLS_MOUNT + '/ca.crt')}&ssl_cert_reqs=required"
        return f"rediss://{role}:{secret}@127.0.0.1:{self.redis.port}/0{query}"

    def admin_url(self) -> str:
        secret = quote(self.passwords["admin"], safe="")
        if self.ca is None:
            return f"redis://admin:{secret}@127.0.0.1:{self.redis.port}/0"
        query = f"?ssl_ca_certs={quote(str(self.ca))}&ssl_cert_reqs=required"
        return f"rediss://admin:{secret}@127.0.0.1:{self.redis.port}/0{query}"

    def pg_url(self, role: str) -> str:
        base = dsn_with_database(TEST_PG_ADMIN_URL, self.database)
        user = f"{self.database}_{role}"
        return base.replace("//postgres@", f"//{user}:{quote(self.passwords[role], safe='')}@", 1)

    def values(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "image": {"repository": IMAGE, "tag": "dev"},
            "redis": {"enabled": False},
            "postgres": {"enabled": False},
            "externalRedis": {
                "url": self.redis_url("keda"),
                "ingestUrl": self.redis_url("ingest"),
                "processorUrl": self.redis_url("processor"),
            },
            "externalPostgres": {"url": self.pg_url("migrator"), "appUrl": self.pg_url("app")},
            "ingest": {"replicaCount": 1, "preStopSleepSeconds": 1},
            "processor": {"pollingInterval": 3},
        }
        return _merge(values, overrides)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def start_release_servers(workdir: Path, label: str, tls: TlsFiles | None = None) -> ReleaseServers:
    """With `tls`: Redis listens with TLS only (its `--port` is the TLS port), client
    certificates not required (the pods and KEDA verify the server with the CA)."""
    passwords = {role: f"{role}-{RESERVED}-{os.urandom(4).hex()}" for role in (*ROLES, "admin")}
    passwords |= {"migrator": f"mig-{RESERVED}", "app": f"app-{RESERVED}"}
    acl = workdir / "users.acl"
    admin = passwords["admin"].replace("'", "")
    passwords["admin"] = admin
    import hashlib

    digest = hashlib.sha256(admin.encode()).hexdigest()
    acl.write_text(
        f"user default off\nuser admin on #{digest} ~* &* +@all\n"
        + render_acl(StreamNames(), passwords)
    )
    # As durable as the chart's default ACK_DURABILITY=fsync needs (ingest checks it).
    durable = (
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--no-appendfsync-on-rewrite",
        "no",
    )
    port = free_port()
    secure: tuple[str, ...] = ()
    if tls is not None:
        secure = (*tls.server_args(), "--tls-auth-clients", "no", "--port", "0")
        secure += ("--tls-port", str(port))
    redis = ThrowawayRedis(port, workdir, ("--aclfile", str(acl), *durable, *secure))
    redis.start()
    database = f"vote_cluster_{label}_{os.getpid()}"
    servers = ReleaseServers(redis, database, passwords, ca=tls.ca if tls else None)
    asyncio.run(_create_database(servers))
    return servers


async def _create_database(servers: ReleaseServers) -> None:
    db, mig, app = servers.database, f"{servers.database}_migrator", f"{servers.database}_app"
    for role, key in ((mig, "migrator"), (app, "app")):
        password = servers.passwords[key].replace("'", "''")
        await admin_execute(f"DROP ROLE IF EXISTS {role}")
        await admin_execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    await admin_execute(f"CREATE DATABASE {db} OWNER {mig}")


def stop_release_servers(servers: ReleaseServers) -> None:
    servers.redis.stop()
    db = servers.database
    asyncio.run(admin_execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
    asyncio.run(admin_execute(f"DROP ROLE IF EXISTS {db}_migrator, {db}_app"))


async def recorded_votes(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM vote_events")
        return count
    finally:
        await conn.close()


@dataclass(frozen=True, slots=True)
class Poll:
    """One polling interval of a ScaledJob, as KEDA's debug log tells it."""

    queue_length: float
    target: float
    running: int
    pending: int
    effective_max: int | None
    created: int


def keda_lines(log: Path, since: int = 0) -> list[str]:
    """KEDA's log lines from byte offset `since` (where a test's release began)."""
    with log.open("rb") as handle:
        handle.seek(since)
        return handle.read().decode(errors="replace").splitlines()


def keda_errors(log: Path, since: int, *needles: str) -> list[str]:
    """KEDA's error lines from byte offset `since` that name every one of `needles` (a
    namespace, a ScaledJob)."""
    return [
        line
        for line in keda_lines(log, since)
        if '"level":"error"' in line and all(needle in line for needle in needles)
    ]


def keda_polls(log: Path, scaledjob: str, since: int = 0) -> list[Poll]:
    """Each poll of `scaledjob` in KEDA's log, in order (scale_handler.go, scale_jobs.go)."""
    polls: list[Poll] = []
    current: dict[str, Any] = {}
    for line in keda_lines(log, since):
        if scaledjob not in line or not line.startswith("{"):
            continue
        entry = json.loads(line)
        msg = entry.get("msg", "")
        if msg == "Scaler Metric value":
            metric = next(v for k, v in entry.items() if re.match(r"s\d+-", k))
            current = {"queue": float(metric), "target": float(entry["targetAverageValue"])}
        elif msg == "Scaling Jobs" and current:
            if "Number of running Jobs" in entry:
                current["running"] = int(entry["Number of running Jobs"])
            else:
                current["pending"] = int(entry["Number of pending Jobs"])
        elif msg == "Creating jobs" and "Effective number of max jobs" in entry:
            current["effective"] = int(entry["Effective number of max jobs"])
        elif msg in ("Creating jobs", "No need to create jobs - all requested jobs already exist"):
            if msg == "Creating jobs" and "Number of jobs" in entry:
                current["created"] = int(entry["Number of jobs"])
            polls.append(_poll(current))
            current = {}
        elif msg == "No change in activity" and "pending" in current:
            polls.append(_poll(current))
            current = {}
    return polls


def _poll(found: dict[str, Any]) -> Poll:
    return Poll(
        found.get("queue", 0.0),
        found.get("target", 1.0),
        found.get("running", 0),
        found.get("pending", 0),
        found.get("effective"),
        found.get("created", 0),
    )
