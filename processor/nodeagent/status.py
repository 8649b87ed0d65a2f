"""The pod status the agent reports, in the API's shape: phase, conditions, pod IP and one
status per container (waiting, running or terminated, with the last termination)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from processor.nodeagent.runtime import ContainerRun, Exit, PodRuntime, now_iso

# Conditions the agent owns; others (PodScheduled, set by the scheduler) are kept as they are.
OWNED = ("Initialized", "ContainersReady", "Ready")


def terminated(exit_: Exit) -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": exit_.code,
            "reason": exit_.reason,
            "startedAt": exit_.started_at,
            "finishedAt": exit_.finished_at,
        }
    }


def container_state(container: ContainerRun) -> dict[str, Any]:
    if container.running:
        return {"running": {"startedAt": container.started_at}}
    if container.restart_at is not None:
        message = f"back-off restarting failed container {container.plan.name}"
        return {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
    if container.last_exit is not None:
        return terminated(container.last_exit)
    return {"waiting": {"reason": "ContainerCreating"}}


def container_status(container: ContainerRun, image: str) -> dict[str, Any]:
    last = container.previous_exit if container.running else None
    if container.restart_at is not None:
        last = container.last_exit
    return {
        "name": container.plan.name,
        "image": image,
        "imageID": "",
        "ready": container.ready and container.running,
        "started": container.running,
        "restartCount": container.restart_count,
        "state": container_state(container),
        "lastState": terminated(last) if last is not None else {},
    }


def condition(kind: str, ok: bool) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now_iso()}


def merged_conditions(
    current: list[Mapping[str, Any]], wanted: list[dict[str, Any]]
) -> list[Mapping[str, Any]]:
    """`wanted` with each unchanged condition's lastTransitionTime kept."""
    previous = {c["type"]: c for c in current}
    for cond in wanted:
        old = previous.get(cond["type"])
        if old is not None and old.get("status") == cond["status"]:
            cond["lastTransitionTime"] = old.get("lastTransitionTime", cond["lastTransitionTime"])
    return [c for c in current if c["type"] not in OWNED] + wanted


def pod_status(pod: Mapping[str, Any], runtime: PodRuntime, host_ip: str) -> dict[str, Any]:
    images = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
    statuses = [container_status(c, images[c.plan.name]) for c in runtime.containers]
    ready = runtime.phase() == "Running" and all(s["ready"] for s in statuses)
    current = (pod.get("status") or {}).get("conditions") or []
    wanted = [
        condition("Initialized", True),
        condition("ContainersReady", ready),
        condition("Ready", ready),
    ]
    return {
        "phase": runtime.phase(),
        "hostIP": host_ip,
        "podIP": runtime.pod_ip,
        "podIPs": [{"ip": runtime.pod_ip}],
        "startTime": (pod.get("status") or {}).get("startTime") or now_iso(),
        "conditions": merged_conditions(current, wanted),
        "containerStatuses": statuses,
    }


def refused_status(pod: Mapping[str, Any], reason: str, message: str) -> dict[str, Any]:
    """A pod the agent cannot run: Failed, with the reason on the pod and each container."""
    never_ran = {
        "terminated": {
            "exitCode": 128,
            "reason": reason,
            "message": message,
            "startedAt": None,
            "finishedAt": now_iso(),
        }
    }
    statuses = [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": never_ran,
        }
        for c in pod["spec"]["containers"]
    ]
    return {
        "phase": "Failed",
        "reason": reason,
        "message": message,
        "startTime": now_iso(),
        "containerStatuses": statuses,
    }
