"""A Redis Cluster of 3 masters and 3 replicas on loopback for the shard benchmark and the
tests: one redis-server per node (free ports, a directory each), joined with
`redis-cli --cluster create`, optionally speaking only TLS (client port, cluster bus and
replication). Every wait is bounded; `stop()` ends every node."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

MASTERS = 3
STARTUP_TIMEOUT_S = 30.0
# How long a node may be unreachable before the others fail it over. The failover tests fail
# over by hand (CLUSTER FAILOVER), so this only has to outlast a node starved of CPU: 1000 ms
# saw the cluster declared down on a 2-core machine at load average 15.
NODE_TIMEOUT_MS = 5000


class ClusterError(RuntimeError):
    """The local cluster did not start or did not become healthy in time."""


class NodeTls(Protocol):
    """Certificates of a TLS-only cluster (tests/support/certs.py's TlsFiles)."""

    def server_args(self) -> tuple[str, ...]: ...
    def peer_args(self) -> tuple[str, ...]: ...
    def cli_args(self) -> tuple[str, ...]: ...
    def client_kwargs(self) -> dict[str, Any]: ...
    def url_query(self) -> str: ...


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ClusterNode:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    cluster: bool = True  # False: a plain standalone server (the benchmark's reference)
    replica_of: int | None = None  # standalone only: the port of the master it replicates
    tls: NodeTls | None = None  # TLS only, on `port`: clients, the cluster bus, replication

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ClusterError("redis-server is not installed (apt-get install redis-server)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir), "--logfile", "redis.log"]
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        if self.tls is not None:
            args += ["--port", "0", "--tls-port", str(self.port), *self.tls.server_args()]
            args += [*self.tls.peer_args(), "--tls-cluster", "yes"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            args += ["--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
            args += ["--cluster-port", str(free_port())]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise ClusterError(f"redis-server did not listen on {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def client(self, **kwargs: Any) -> redis.Redis:
        """A plain client of this node (TLS options included when it speaks TLS)."""
        tls = self.tls.client_kwargs() if self.tls is not None else {}
        return redis.Redis(port=self.port, **tls, **kwargs)


@dataclass
class LocalCluster:
    workdir: Path
    masters: int = MASTERS
    nodes: list[ClusterNode] = field(default_factory=list)
    tls: NodeTls | None = None

    @property
    def url(self) -> str:
        """A URL naming one node, as REDIS_URL does in cluster mode."""
        return self.user_url("")

    def user_url(self, userinfo: str) -> str:
        """The URL of the first node with `userinfo` (`user:password@` or empty)."""
        if self.tls is None:
            return f"redis://{userinfo}127.0.0.1:{self.nodes[0].port}/0"
        return f"rediss://{userinfo}127.0.0.1:{self.nodes[0].port}/0{self.tls.url_query()}"

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def start(self) -> None:
        try:
            for index in range(self.masters * 2):
                workdir = self.workdir / f"node-{index}"
                workdir.mkdir(parents=True, exist_ok=True)
                self.nodes.append(ClusterNode(free_port(), workdir, tls=self.tls))
                self.nodes[-1].start()
            self._create()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def _create(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise ClusterError("redis-cli is not installed (apt-get install redis-tools)")
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        tls = self.tls.cli_args() if self.tls is not None else ()
        create = ["--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"]
        result = subprocess.run(
            [cli, *tls, *create],
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(f"redis-cli --cluster create failed: {result.stdout}{result.stderr}")

    def clients(self) -> Iterator[redis.Redis]:
        """A plain client per running node (closed by the caller's `with`)."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                yield node.client(socket_timeout=2, decode_responses=True)

    def wait_healthy(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Until every running node sees the cluster OK and every replica is in sync."""
        deadline = time.monotonic() + timeout_s
        while not self._healthy():
            if time.monotonic() > deadline:
                raise ClusterError(f"the cluster in {self.workdir} did not become healthy")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        masters = 0
        for client in self.clients():
            with client:
                try:
                    if client.cluster("info")["cluster_state"] != "ok":
                        return False
                    info = client.info("replication")
                except redis.RedisError:
                    return False
                if info["role"] == "master":
                    masters += 1
                elif info.get("master_link_status") != "up":
                    return False
        return masters == self.masters

    def master_of(self, key: str) -> ClusterNode:
        """The node that serves `key`'s slot now."""
        with self.nodes[0].client(decode_responses=True) as client:
            slot = int(client.cluster("keyslot", key))
            for start, end, master, *_ in client.cluster("slots"):
                if start <= slot <= end:
                    return next(node for node in self.nodes if node.port == int(master[1]))
        raise ClusterError(f"no node serves {key}")

    def master_nodes(self) -> list[tuple[str, ClusterNode]]:
        """(node ID, node) of every master."""
        with self.nodes[0].client(decode_responses=True) as client:
            nodes = client.cluster("nodes")
        found = []
        for address, node in nodes.items():
            if "master" in node["flags"]:
                port = int(address.split("@")[0].rpartition(":")[2])
                found.append((node["node_id"], next(n for n in self.nodes if n.port == port)))
        return sorted(found, key=lambda pair: pair[1].port)

    def move_empty_slot(self, key: str, node_id: str) -> None:
        """Assign `key`'s slot, which must hold no key yet, to master `node_id` (what
        `redis-cli --cluster reshard` does for a slot with keys, minus MIGRATE): told to the
        new owner first, then to the other masters; replicas learn it from them."""
        masters = self.master_nodes()
        with self.nodes[0].client() as client:
            slot = int(client.cluster("keyslot", key))
        ordered = sorted(masters, key=lambda pair: pair[0] != node_id)
        for _, node in ordered:
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", node_id)
        self.wait_healthy()
        if self.master_of(key).port != dict(masters)[node_id].port:
            raise ClusterError(f"slot {slot} did not move to {node_id}")

    def delete_keys(self, pattern: str) -> None:
        """Delete every key matching `pattern` on every master (keys are on one node each)."""
        for client in self.clients():
            with client:
                if client.info("replication")["role"] != "master":
                    continue
                for key in list(client.scan_iter(match=pattern, count=1000)):
                    client.delete(key)
