"""A Sentinel setup on loopback: one master, one replica and three sentinels (quorum 2), each a
process of its own in the test's tmp dir, with bounded waits and a forced or real failover.
With `tls` every process listens only for TLS and requires client certificates, and the
servers and sentinels reach each other over TLS with the client certificate.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.certs import TlsFiles
from tests.support.servers import ThrowawayRedis, free_port

MASTER_NAME = "votes-master"
STARTUP_TIMEOUT_S = 30.0
FAILOVER_TIMEOUT_S = 60.0
# Sentinels declare a master down after this long without a reply: short for quick failover
# tests, long enough that a master starved of CPU on a busy 2-core machine is not failed over.
DOWN_AFTER_MS = 3000
# What a sentinel's own ACL user needs: what redis-py asks a sentinel (SENTINEL MASTERS), and
# what go-redis v9.19 (KEDA's sentinel client) asks besides: GET-MASTER-ADDR-BY-NAME,
# SENTINELS, SUBSCRIBE to two channels, and PING on that subscription after 3 s without a
# message (its health check; tests/cluster/test_sentinel.py found it refused without +ping)
# (docs/redis-topologies.md#sentinel).
SENTINEL_USER_RULES = (
    "+sentinel|masters", "+sentinel|get-master-addr-by-name", "+sentinel|sentinels",
    "+subscribe", "+ping", "resetchannels", "&+switch-master", "&+replica-reconf-done",
)  # fmt: skip


@dataclass
class SentinelProcess:
    port: int
    workdir: Path
    master_port: int
    tls: TlsFiles | None = None
    process: subprocess.Popen[bytes] | None = None
    # The password of this sentinel's default user, once a test has given it one.
    password: str | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        conf = self.workdir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.workdir}\nlogfile sentinel.log\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        args = [binary, str(conf), "--sentinel"]
        if self.tls is not None:
            args += ["--port", "0", "--tls-port", str(self.port)]
            args += [*self.tls.server_args(), *self.tls.peer_args()]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def client(self) -> redis.Redis:
        login = {"username": "default", "password": self.password} if self.password else {}
        return connect(self.port, self.tls, socket_timeout=2, decode_responses=True, **login)


def connect(port: int, tls: TlsFiles | None, **kwargs: Any) -> redis.Redis:
    """A plain client of a server or sentinel of the setup, over TLS when it speaks TLS."""
    return redis.Redis(port=port, **(tls.client_kwargs() if tls else {}), **kwargs)


@dataclass
class LocalSentinel:
    """Start with `start()`; `master()` is whichever server the sentinels name now."""

    workdir: Path
    tls: TlsFiles | None = None
    servers: list[ThrowawayRedis] = field(default_factory=list)
    sentinels: list[SentinelProcess] = field(default_factory=list)

    @property
    def addresses(self) -> str:
        """The value of REDIS_SENTINELS."""
        return ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)

    @property
    def url(self) -> str:
        """REDIS_URL in sentinel mode: credentials and database only; the host is not used."""
        return self.user_url("")

    def user_url(self, userinfo: str) -> str:
        """REDIS_URL with `userinfo` (`user:password@` or empty), rediss:// with TLS."""
        if self.tls is None:
            return f"redis://{userinfo}sentinel-managed/0"
        return f"rediss://{userinfo}sentinel-managed/0{self.tls.url_query()}"

    def connect(self, port: int, **kwargs: Any) -> redis.Redis:
        return connect(port, self.tls, **kwargs)

    def delete_keys(self, pattern: str) -> None:
        """Delete the keys matching `pattern` on whichever server is the master now."""
        with self.connect(self.master_port()) as client:
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)

    def environ(self) -> dict[str, str]:
        return {
            "REDIS_MODE": "sentinel",
            "REDIS_URL": self.url,
            "REDIS_SENTINELS": self.addresses,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
        }

    def start(self) -> None:
        try:
            master = self._server("master", ())
            self._server("replica", ("--replicaof", "127.0.0.1", str(master.port)))
            for index in range(3):
                workdir = self.workdir / f"sentinel-{index}"
                workdir.mkdir(parents=True, exist_ok=True)
                sentinel = SentinelProcess(free_port(), workdir, master.port, self.tls)
                self.sentinels.append(sentinel)
                sentinel.start()
            self.wait_settled(master.port)
        except BaseException:
            self.stop()
            raise

    def _server(self, name: str, args: tuple[str, ...]) -> ThrowawayRedis:
        workdir = self.workdir / name
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        if self.tls is not None:
            tls = ("--port", "0", "--tls-port", str(port))
            args += (*tls, *self.tls.server_args(), *self.tls.peer_args())
        server = ThrowawayRedis(port, workdir, (*args, "--logfile", "redis.log"))
        self.servers.append(server)
        server.start()
        return server

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()

    def master_port(self) -> int:
        """The master's port as the first sentinel that answers names it."""
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])
            except redis.RedisError:
                continue
        raise AssertionError("no sentinel answers")

    def master(self) -> ThrowawayRedis:
        port = self.master_port()
        return next(server for server in self.servers if server.port == port)

    def wait_settled(self, master_port: int, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Until every sentinel names `master_port`, knows the other two sentinels and one
        replica in sync, and that replica's link to the master is up."""
        deadline = time.monotonic() + timeout_s
        while not self._settled(master_port):
            if time.monotonic() > deadline:
                pytest.fail(f"the sentinel setup in {self.workdir} did not settle")
            time.sleep(0.1)

    def _settled(self, master_port: int) -> bool:
        try:
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    state = client.sentinel_master(MASTER_NAME)
                    if int(state["port"]) != master_port or not state["is_master"]:
                        return False
                    if state["is_sdown"] or state["is_odown"]:
                        return False
                    if state["num-other-sentinels"] != 2 or state["num-slaves"] != 1:
                        return False
                    replicas = client.sentinel_slaves(MASTER_NAME)
                    if any(r["is_sdown"] or r["is_odown"] for r in replicas):
                        return False
            for server in self.servers:
                if server.port == master_port or server.process is None:
                    continue
                with self.connect(server.port, socket_timeout=2) as client:
                    info = client.info("replication")
                    if info.get("master_link_status") != "up" or info["master_port"] != master_port:
                        return False
        except redis.RedisError:
            return False
        return True

    def failover(self) -> int:
        """`SENTINEL FAILOVER`: the replica is promoted at once; returns the new master's port."""
        old = self.master_port()
        with self.sentinels[0].client() as client:
            client.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        return self._wait_new_master(old)

    def kill_master(self) -> tuple[ThrowawayRedis, int]:
        """SIGKILL the master (the sentinels then fail over on their own); returns the killed
        server (restart it with `restart`) and the new master's port."""
        killed = self.master()
        assert killed.process is not None
        os.kill(killed.process.pid, signal.SIGKILL)
        killed.process.wait(timeout=10)
        killed.process = None
        return killed, self._wait_new_master(killed.port)

    def restart(self, server: ThrowawayRedis) -> None:
        """Start a killed server again; the sentinels turn it into the new master's replica."""
        server.start()
        self.wait_settled(self.master_port())

    def _wait_new_master(self, old_port: int) -> int:
        deadline = time.monotonic() + FAILOVER_TIMEOUT_S
        while time.monotonic() < deadline:
            port = self.master_port()
            if port != old_port and self._is_master(port):
                return port
            time.sleep(0.1)
        pytest.fail("the sentinels did not fail over in time")

    def _is_master(self, port: int) -> bool:
        try:
            with self.connect(port, socket_timeout=2) as client:
                return bool(client.info("replication")["role"] == "master")
        except redis.RedisError:
            return False
