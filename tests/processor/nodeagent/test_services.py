"""Services as the node agent models them: a loopback address per Service, a TCP proxy per
port to the Ready pods it selects, and the Service's host names rewritten to that address."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from processor.nodeagent.podspec import rewrite_hosts
from processor.nodeagent.services import ServiceProxies
from tests.support.servers import free_port

POD_IP = "127.0.1.250"


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A server on the pod's address that answers each connection with what it got, upper."""
    server = socket.create_server((POD_IP, 0))
    port: int = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(conn.recv(1024).upper())

    threading.Thread(target=serve, daemon=True).start()
    yield port
    server.close()


def service(port: int, target: int | str) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "votes"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": port, "targetPort": target}]},
    }


def pod(ready: bool, container_port: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-1", "namespace": "votes", "labels": {"app": "web"}},
        "spec": {"containers": [{"ports": [{"name": "http", "containerPort": container_port}]}]},
        "status": {
            "podIP": POD_IP,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def ask(address: str, port: int) -> bytes:
    """The answer; b"" when the proxy closed the connection (with our bytes unread)."""
    with socket.create_connection((address, port), timeout=10) as conn:
        try:
            conn.sendall(b"hello")
            conn.shutdown(socket.SHUT_WR)
            return conn.recv(1024)
        except OSError:  # reset, or not connected any more
            return b""


def test_a_service_reaches_its_ready_pods_only(echo_port: int) -> None:
    proxies = ServiceProxies()
    port = free_port()
    try:
        proxies.update([service(port, "http")], [pod(False, echo_port)])
        address = proxies.hosts()["web.votes.svc"]
        assert ask(address, port) == b"", "a pod that is not Ready gets no traffic"
        proxies.update([service(port, "http")], [pod(True, echo_port)])
        assert ask(address, port) == b"HELLO"
        assert proxies.hosts()["web.votes.svc.cluster.local"] == address
    finally:
        proxies.update([], [])
    assert proxies.addresses == {}
    # Found on the real control plane: a Service deleted and created again (helm uninstall,
    # install) must get its address and port back.
    proxies.update([service(port, "http")], [pod(True, echo_port)])
    try:
        assert ask(proxies.hosts()["web.votes.svc"], port) == b"HELLO"
    finally:
        proxies.update([], [])


def test_host_names_are_rewritten_at_their_boundaries() -> None:
    hosts = {"web.votes.svc": "127.0.2.1"}
    assert rewrite_hosts("http://web.votes.svc:80/x", hosts) == "http://127.0.2.1:80/x"
    assert rewrite_hosts("web.votes.svc.example", hosts) == "web.votes.svc.example"
    assert rewrite_hosts("myweb.votes.svc", hosts) == "myweb.votes.svc"
