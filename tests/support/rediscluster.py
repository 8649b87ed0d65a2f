"""A Redis Cluster of 3 masters and 3 replicas on loopback, each node a redis-server of its own
(free ports, a directory each under the test's tmp dir), made with `redis-cli --cluster create`.

Every wait is bounded; `stop()` ends every node whatever state the cluster is in.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.servers import ThrowawayRedis, free_port

MASTERS = 3
STARTUP_TIMEOUT_S = 30.0
# How long a node may be unreachable before the others fail it over: short, so failover tests
# are quick, but far above the loopback round trip.
NODE_TIMEOUT_MS = 1000


@dataclass
class LocalCluster:
    workdir: Path
    masters: int = MASTERS
    nodes: list[ThrowawayRedis] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A URL naming one node, as REDIS_URL does in cluster mode."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def start(self) -> None:
        try:
            for index in range(self.masters * 2):
                self.nodes.append(self._node(index))
                self.nodes[-1].start()
            self._create()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def _node(self, index: int) -> ThrowawayRedis:
        workdir = self.workdir / f"node-{index}"
        workdir.mkdir(parents=True, exist_ok=True)
        args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        args += ("--cluster-node-timeout", str(NODE_TIMEOUT_MS))
        args += ("--cluster-port", str(free_port()), "--logfile", "redis.log")
        return ThrowawayRedis(port=free_port(), workdir=workdir, extra_args=args)

    def _create(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            pytest.fail("redis-cli is not installed (apt-get install redis-tools)")
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        result = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed: {result.stdout}{result.stderr}")

    def clients(self) -> Iterator[redis.Redis]:
        """A plain client per running node (closed by the caller's `with`)."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                yield redis.Redis(port=node.port, socket_timeout=2, decode_responses=True)

    def wait_healthy(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Until every running node sees the cluster OK and every replica is in sync."""
        deadline = time.monotonic() + timeout_s
        while not self._healthy():
            if time.monotonic() > deadline:
                pytest.fail(f"the cluster in {self.workdir} did not become healthy")
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

    def master_of(self, key: str) -> ThrowawayRedis:
        """The node that serves `key`'s slot now."""
        with redis.Redis(port=self.nodes[0].port, decode_responses=True) as client:
            slot = int(client.cluster("keyslot", key))
            for start, end, master, *_ in client.cluster("slots"):
                if start <= slot <= end:
                    return next(node for node in self.nodes if node.port == int(master[1]))
        raise AssertionError(f"no node serves {key}")

    def delete_keys(self, pattern: str) -> None:
        """Delete every key matching `pattern` on every master (keys are on one node each)."""
        for client in self.clients():
            with client:
                if client.info("replication")["role"] != "master":
                    continue
                for key in list(client.scan_iter(match=pattern, count=1000)):
                    client.delete(key)
