"""Services as the agent models them: each ClusterIP Service with a selector gets a loopback
address of its own (127.0.2.x, not its ClusterIP) with a TCP proxy per port to the Ready pods
it selects, as kube-proxy would; `name.namespace.svc` and `name.namespace.svc.cluster.local`
in a pod's argv and env mean that address (there is no cluster DNS: short names and other
record types are not modelled)."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import random
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)
FIRST_SERVICE_IP = ipaddress.IPv4Address("127.0.2.1")
CONNECT_TIMEOUT_S = 5.0
CHUNK = 65536

# The Ready endpoints (address, port) of a service port, looked up at each connection.
Endpoints = Callable[[], list[tuple[str, int]]]


def pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(CHUNK):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def relay(client: socket.socket, endpoints: Endpoints) -> None:
    """One connection, to a random Ready endpoint; refused (closed) when there is none."""
    with client:
        ready = endpoints()
        if not ready:
            return
        try:
            upstream = socket.create_connection(random.choice(ready), CONNECT_TIMEOUT_S)
        except OSError:
            return
        with upstream:
            upstream.settimeout(None)
            back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
            back.start()
            pipe(client, upstream)
            back.join()


@dataclass
class PortProxy:
    address: str
    port: int
    endpoints: Endpoints
    listener: socket.socket = field(init=False)

    def __post_init__(self) -> None:
        self.listener = socket.create_server((self.address, self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                threading.Thread(target=relay, args=(client, self.endpoints), daemon=True).start()

    def close(self) -> None:
        # close() alone leaves a thread blocked in accept() holding the socket in LISTEN (the
        # address stays taken); shutdown() wakes it.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


def selects(selector: Mapping[str, str], pod: Mapping[str, Any]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def target_port(port: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    target = port.get("targetPort", port["port"])
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in pod["spec"]["containers"]:
        for declared in container.get("ports") or ():
            if declared.get("name") == target:
                return int(declared["containerPort"])
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return ready and bool(status.get("podIP")) and not pod["metadata"].get("deletionTimestamp")


@dataclass
class ServiceProxies:
    """Call `update(services, pods)` each round with what the API lists."""

    addresses: dict[str, str] = field(default_factory=dict)  # "ns/name" -> address
    proxies: dict[tuple[str, int], PortProxy] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def hosts(self) -> dict[str, str]:
        """Service host names -> their address, for pods' argv and env."""
        names = {}
        for key, address in self.addresses.items():
            namespace, name = key.split("/", 1)
            names[f"{name}.{namespace}.svc"] = address
            names[f"{name}.{namespace}.svc.cluster.local"] = address
        return names

    def update(self, services: list[dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        wanted = {}
        for service in services:
            meta, spec = service["metadata"], service["spec"]
            if spec.get("type", "ClusterIP") == "ClusterIP" and spec.get("selector"):
                wanted[f"{meta['namespace']}/{meta['name']}"] = spec
        for key in set(self.addresses) - set(wanted):
            self._drop(key)
        for key, spec in wanted.items():
            self.specs[key] = spec
            if key not in self.addresses:
                try:
                    self._add(key, spec)
                except OSError as error:  # tried again next round
                    logger.warning("service %s: %s", key, error)
                    self._drop(key)

    def endpoints(self, key: str, port: Mapping[str, Any]) -> list[tuple[str, int]]:
        namespace = key.split("/", 1)[0]
        selector = self.specs[key].get("selector") or {}
        found = []
        for pod in self.pods:
            if pod["metadata"]["namespace"] == namespace and selects(selector, pod):
                number = target_port(port, pod)
                if number is not None and is_ready(pod):
                    found.append((pod["status"]["podIP"], number))
        return found

    def _add(self, key: str, spec: dict[str, Any]) -> None:
        used = set(self.addresses.values())
        address = next(
            str(FIRST_SERVICE_IP + i) for i in range(250) if str(FIRST_SERVICE_IP + i) not in used
        )
        self.addresses[key] = address
        for port in spec.get("ports") or ():
            if port.get("protocol", "TCP") == "TCP":
                lookup = functools.partial(self.endpoints, key, port)
                self.proxies[(address, port["port"])] = PortProxy(address, port["port"], lookup)
        logger.info("service %s at %s", key, address)

    def _drop(self, key: str) -> None:
        address = self.addresses.pop(key)
        self.specs.pop(key, None)
        for proxy_key in [k for k in self.proxies if k[0] == address]:
            self.proxies.pop(proxy_key).close()
