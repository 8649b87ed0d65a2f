"""Admission of one pod bound to this node: which pods run (the project's image only), their
pod IP (a loopback address of their own) and their containers' plans."""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processor.nodeagent.image import ImageConfig
from processor.nodeagent.podspec import ObjectData, PodSpecError, plan_container
from processor.nodeagent.runtime import ContainerRun, PodRuntime

FIRST_POD_IP = ipaddress.IPv4Address("127.0.1.1")
PROC_NET_TCP = Path("/proc/net/tcp")
TCP_LISTEN = "0A"  # include/net/tcp_states.h


def listening_addresses(table: Path = PROC_NET_TCP) -> set[str]:
    """IPv4 addresses some process listens on (TCP), from the kernel's socket table."""
    found = set()
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        if state == TCP_LISTEN:
            packed = struct.pack("=I", int(local.split(":")[0], 16))  # printed in host order
            found.add(socket.inet_ntoa(packed))
    return found


def image_repository(image: str) -> str:
    """`registry/name:tag@digest` -> `registry/name`."""
    name = image.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def unsupported(pod: Mapping[str, Any], repository: str) -> str | None:
    """Why the pod cannot run here, or None."""
    spec = pod["spec"]
    if spec.get("initContainers"):
        return "init containers are not run by the node agent"
    for container in spec["containers"]:
        if image_repository(container["image"]) != repository:
            return (
                f"image {container['image']} is not the project's image ({repository}); "
                "the node agent runs only that one, as local processes"
            )
    return None


@dataclass
class AddressPool:
    """Pod IPs: 127.0.1.1 and up, each given back when its pod is gone. An address another
    process listens on (a leftover server of an earlier run) is skipped: the pod's server would
    fail there with EADDRINUSE."""

    first: ipaddress.IPv4Address = field(default_factory=lambda: FIRST_POD_IP)
    size: int = 250
    used: set[str] = field(default_factory=set)
    taken_elsewhere: Callable[[], set[str]] = listening_addresses

    def take(self) -> str:
        elsewhere = self.taken_elsewhere()
        for offset in range(self.size):
            address = str(self.first + offset)
            if address not in self.used and address not in elsewhere:
                self.used.add(address)
                return address
        raise PodSpecError("no free pod address left on this node")

    def give_back(self, address: str) -> None:
        self.used.discard(address)


def pod_runtime(
    pod: dict[str, Any],
    image: ImageConfig,
    pod_dir: Path,
    pod_ip: str,
    data: ObjectData,
    hosts: Mapping[str, str],
) -> PodRuntime:
    """The pod's containers, planned (volumes materialized) but not started."""
    pod.setdefault("status", {})["podIP"] = pod_ip
    runs = []
    for container in pod["spec"]["containers"]:
        plan = plan_container(pod, container, image, pod_dir, data, hosts)
        runs.append(ContainerRun(container, plan, pod_dir / f"{container['name']}.log"))
    return PodRuntime(pod_ip, pod["spec"].get("restartPolicy", "Always"), runs)
