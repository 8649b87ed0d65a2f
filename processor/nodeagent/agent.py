"""The agent's loop: every `poll_s`, list the pods bound to this node and reconcile each one.

- A new pod is admitted (pods.unsupported) and started, or reported Failed with the reason;
  one whose Secret or ConfigMap is missing waits (CreateContainerConfigError) and is retried.
- A pod's status is patched whenever what it says changes.
- A pod marked for deletion: preStop, SIGTERM, SIGKILL after its grace period; once its
  containers are gone the agent deletes the object (grace 0), as the kubelet does.
- A pod that is gone from the API has its processes killed and its directory removed.
Listing each round, not watching, keeps the agent simple; on a local API server a round costs
milliseconds.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processor.nodeagent.image import ImageConfig
from processor.nodeagent.kubeapi import HTTP_NOT_FOUND, KubeApi, KubeApiError
from processor.nodeagent.node import (
    LEASE_RENEW_S,
    STATUS_RENEW_S,
    NodeRegistration,
    machine_capacity,
)
from processor.nodeagent.pods import AddressPool, pod_runtime, unsupported
from processor.nodeagent.podspec import MissingObjectError, PodSpecError, decode_secret
from processor.nodeagent.runtime import PodRuntime
from processor.nodeagent.services import ServiceProxies
from processor.nodeagent.status import pod_status, refused_status

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentSettings:
    node_name: str
    workdir: Path
    image_repository: str
    host_ip: str = "127.0.0.1"
    poll_s: float = 0.5


@dataclass
class LocalPod:
    name: str
    namespace: str
    directory: Path
    runtime: PodRuntime | None = None
    done: bool = False
    sent: dict[str, Any] = field(default_factory=dict)


class NodeAgent:
    def __init__(self, api: KubeApi, settings: AgentSettings, image: ImageConfig) -> None:
        self.api, self.settings, self.image = api, settings, image
        self.node = NodeRegistration(api, settings.node_name, settings.host_ip, machine_capacity())
        self.pods: dict[str, LocalPod] = {}
        self.addresses = AddressPool()
        self.services = ServiceProxies()

    def run(self, stop: threading.Event) -> None:
        self.node.register()
        lease_at = status_at = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now - lease_at >= LEASE_RENEW_S:
                self.node.renew_lease()
                lease_at = now
            if now - status_at >= STATUS_RENEW_S:
                self.node.renew_status()
                status_at = now
            self.reconcile()
            stop.wait(self.settings.poll_s)
        self.shutdown()

    def reconcile(self) -> None:
        selector = f"spec.nodeName={self.settings.node_name}"
        listed = self.api.get("/api/v1/pods", fieldSelector=selector)
        self.services.update(self.api.get("/api/v1/services")["items"], listed["items"])
        seen = set()
        for pod in listed["items"]:
            seen.add(pod["metadata"]["uid"])
            try:
                self.reconcile_pod(pod)
            except KubeApiError as error:
                logger.warning("pod %s: %s", pod["metadata"]["name"], error)
        for uid in set(self.pods) - seen:
            self.forget(uid)

    def reconcile_pod(self, pod: dict[str, Any]) -> None:
        uid, meta = pod["metadata"]["uid"], pod["metadata"]
        local = self.pods.get(uid)
        if local is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                local = LocalPod(meta["name"], meta["namespace"], self._dir(pod), done=True)
                self.pods[uid] = local
            else:
                local = self.admit(pod)
        if local.runtime is None and not local.done:
            self.start(pod, local)
        runtime = local.runtime
        if runtime is not None:
            if meta.get("deletionTimestamp"):
                grace = float(meta.get("deletionGracePeriodSeconds") or 0)
                runtime.terminate(grace, time.monotonic())
            runtime.step(time.monotonic())
            self.report(pod, local, pod_status(pod, runtime, self.settings.host_ip))
            local.done = runtime.finished
        if meta.get("deletionTimestamp") and local.done:
            self.delete(pod)

    def admit(self, pod: dict[str, Any]) -> LocalPod:
        meta = pod["metadata"]
        local = LocalPod(meta["name"], meta["namespace"], self._dir(pod))
        self.pods[meta["uid"]] = local
        reason = unsupported(pod, self.settings.image_repository)
        if reason is not None:
            logger.warning("refusing pod %s/%s: %s", local.namespace, local.name, reason)
            self.report(pod, local, refused_status(pod, "UnsupportedByNodeAgent", reason))
            local.done = True
        return local

    def start(self, pod: dict[str, Any], local: LocalPod) -> None:
        address = self.addresses.take()
        try:
            local.directory.mkdir(parents=True, exist_ok=True)
            runtime = pod_runtime(
                pod, self.image, local.directory, address, self.object_data, self.services.hosts()
            )
        except MissingObjectError as error:
            self.addresses.give_back(address)
            self.report(
                pod,
                local,
                {"phase": "Pending", "message": str(error), "reason": "CreateContainerConfigError"},
            )
            return
        except PodSpecError as error:
            self.addresses.give_back(address)
            self.report(pod, local, refused_status(pod, "UnsupportedByNodeAgent", str(error)))
            local.done = True
            return
        runtime.start()
        local.runtime = runtime
        logger.info("started pod %s/%s at %s", local.namespace, local.name, address)

    def object_data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        plural = "secrets" if kind == "secret" else "configmaps"
        found = self.api.get_or_none(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        if found is None:
            return None
        if kind == "secret":
            return decode_secret(found.get("data"))
        return dict(found.get("data") or {})

    def report(self, pod: dict[str, Any], local: LocalPod, status: dict[str, Any]) -> None:
        comparable: dict[str, Any] = _without_times(status)
        if comparable == local.sent:
            return
        path = f"/api/v1/namespaces/{local.namespace}/pods/{local.name}/status"
        self.api.patch(path, {"status": status})
        local.sent = comparable

    def delete(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        options = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        try:
            self.api.delete(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", options)
        except KubeApiError as error:
            if error.status != HTTP_NOT_FOUND:
                raise

    def forget(self, uid: str) -> None:
        local = self.pods.pop(uid)
        if local.runtime is not None:
            for container in local.runtime.containers:
                container.signal(signal.SIGKILL)
            self.addresses.give_back(local.runtime.pod_ip)
        shutil.rmtree(local.directory, ignore_errors=True)

    def shutdown(self) -> None:
        self.services.update([], [])
        for local in self.pods.values():
            if local.runtime is not None and not local.runtime.finished:
                local.runtime.terminate(5.0, time.monotonic())

    def _dir(self, pod: dict[str, Any]) -> Path:
        meta = pod["metadata"]
        return self.settings.workdir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"


def _without_times(value: Any) -> Any:
    """`value` without its timestamps (keys ending in Time or At), to tell real changes."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not k.endswith(("Time", "At"))}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value
