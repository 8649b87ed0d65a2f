"""The Node object and its Lease: registered once, the Lease renewed every
`LEASE_RENEW_S` and the Ready condition every `STATUS_RENEW_S`, as the kubelet does."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from typing import Any

from processor.nodeagent.kubeapi import HTTP_CONFLICT, HTTP_NOT_FOUND, KubeApi, KubeApiError

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40
LEASE_RENEW_S = 10.0
STATUS_RENEW_S = 30.0
NOT_READY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def machine_capacity() -> dict[str, str]:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{pages // 1024}Ki", "pods": "110"}


def node_status(host_ip: str, capacity: dict[str, str]) -> dict[str, Any]:
    now = micro_now()[:19] + "Z"
    conditions = [
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
            "message": "node agent of vote-pipeline",
        }
        for kind, status, reason in (
            ("Ready", "True", "KubeletReady"),
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
        )
    ]
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": host_ip},
            {"type": "Hostname", "address": platform.node()},
        ],
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "osImage": "local processes",
            "kernelVersion": platform.release(),
            "kubeletVersion": "vote-pipeline-node-agent",
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "local://processes",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


class NodeRegistration:
    def __init__(self, api: KubeApi, name: str, host_ip: str, capacity: dict[str, str]) -> None:
        self.api, self.name, self.host_ip, self.capacity = api, name, host_ip, capacity

    def register(self) -> None:
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
        }
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
        }
        try:
            self.api.create("/api/v1/nodes", body)
        except KubeApiError as error:
            if error.status != HTTP_CONFLICT:
                raise
        self.renew_status()
        self.renew_lease()
        self.clear_not_ready_taints()

    def clear_not_ready_taints(self) -> None:
        """The API server's TaintNodesByCondition admission taints a new Node not-ready; the
        node lifecycle controller, which is not run here, lifts it once the Node is Ready."""
        node = self.api.get(f"/api/v1/nodes/{self.name}")
        taints = node["spec"].get("taints") or []
        kept = [t for t in taints if t["key"] not in NOT_READY_TAINTS]
        if kept != taints:
            self.api.patch(f"/api/v1/nodes/{self.name}", {"spec": {"taints": kept or None}})

    def renew_status(self) -> None:
        status = node_status(self.host_ip, self.capacity)
        self.api.patch(f"/api/v1/nodes/{self.name}/status", {"status": status})

    def renew_lease(self) -> None:
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_DURATION_S,
            "renewTime": micro_now(),
        }
        leases = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        try:
            self.api.patch(f"{leases}/{self.name}", {"spec": spec})
        except KubeApiError as error:
            if error.status != HTTP_NOT_FOUND:
                raise
            self.api.create(leases, {"metadata": {"name": self.name}, "spec": spec})
