"""The parts of a KEDA ScaledJob manifest the local runner needs, parsed into frozen types.

Defaults are KEDA's and Kubernetes' own (pollingInterval 30, history limits 100,
backoffLimit 6, terminationGracePeriodSeconds 30, probe period 10 s), so a manifest means the
same thing here as in a cluster. Only what the runner can reproduce faithfully is accepted:
one container, Redis stream triggers (standalone, cluster, sentinel) in lag mode, exec
readiness probes; anything else is a ManifestError naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from processor.scaledjob.scaling import (
    CALCULATIONS,
    STRATEGIES,
    Calculation,
    ReplicaBounds,
    ScalingStrategy,
    StrategyName,
)

Node = Mapping[str, Any]


class ManifestError(ValueError):
    """The manifest is not a ScaledJob the local runner can run; the message names the field."""


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One container env entry: a literal `value`, or where `valueFrom` points."""

    name: str
    value: str | None = None
    secret_ref: tuple[str, str] | None = None
    config_map_ref: tuple[str, str] | None = None
    field_path: str | None = None
    optional: bool = False


@dataclass(frozen=True, slots=True)
class ExecProbe:
    command: tuple[str, ...]
    initial_delay_s: int = 0
    period_s: int = 10
    timeout_s: int = 1


@dataclass(frozen=True, slots=True)
class LagTrigger:
    """A Redis stream trigger in lag mode (`consumerGroup` and `lagCount` set)."""

    stream: str
    group: str
    lag_count: int
    activation_lag_count: int = 0
    address: str = ""


@dataclass(frozen=True, slots=True)
class JobTemplate:
    """`spec.jobTargetRef`: what one Job runs and how Kubernetes would treat it."""

    command: tuple[str, ...]
    env: tuple[EnvVar, ...] = ()
    backoff_limit: int = 6
    active_deadline_s: int | None = None
    grace_period_s: int = 30
    empty_dir_mounts: tuple[str, ...] = ()
    readiness: ExecProbe | None = None


@dataclass(frozen=True, slots=True)
class ScaledJobManifest:
    name: str
    namespace: str
    polling_interval_s: float
    bounds: ReplicaBounds
    strategy: ScalingStrategy
    successful_jobs_history_limit: int
    failed_jobs_history_limit: int
    rollout_strategy: str
    triggers: tuple[LagTrigger, ...]
    job: JobTemplate


def mapping(node: Any, where: str) -> Node:
    if not isinstance(node, Mapping):
        raise ManifestError(f"{where} must be a mapping")
    return cast(Node, node)


def integer(node: Node, key: str, where: str, default: int | None, minimum: int = 0) -> int:
    value = node.get(key, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ManifestError(f"{where}.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def optional_int(node: Node, key: str, where: str) -> int | None:
    return None if node.get(key) is None else integer(node, key, where, None)


def parse_strategy(spec: Node) -> ScalingStrategy:
    node = mapping(spec.get("scalingStrategy", {}), "spec.scalingStrategy")
    name = node.get("strategy", "default") or "default"
    calculation = node.get("multipleScalersCalculation", "max") or "max"
    if name not in STRATEGIES:
        raise ManifestError(f"spec.scalingStrategy.strategy must be one of {STRATEGIES}")
    if calculation not in CALCULATIONS:
        raise ManifestError(f"spec.scalingStrategy.multipleScalersCalculation: {CALCULATIONS}")
    percentage = node.get("customScalingRunningJobPercentage")
    return ScalingStrategy(
        strategy=cast(StrategyName, name),
        custom_queue_length_deduction=optional_int(
            node, "customScalingQueueLengthDeduction", "spec.scalingStrategy"
        ),
        custom_running_job_percentage=None if percentage is None else str(percentage),
        multiple_scalers_calculation=cast(Calculation, calculation),
        pending_pod_conditions=tuple(str(c) for c in node.get("pendingPodConditions") or ()),
    )


# KEDA's stream scalers for standalone Redis, Redis Cluster and Sentinel: the same lag metric,
# read through the runner's client for REDIS_MODE (docs/redis-topologies.md).
TRIGGER_TYPES = ("redis-streams", "redis-cluster-streams", "redis-sentinel-streams")


def parse_trigger(node: Node, where: str) -> LagTrigger:
    if node.get("type") not in TRIGGER_TYPES:
        raise ManifestError(f"{where}.type must be one of {', '.join(TRIGGER_TYPES)}")
    meta = mapping(node.get("metadata"), f"{where}.metadata")
    if not meta.get("stream") or not meta.get("consumerGroup") or "lagCount" not in meta:
        raise ManifestError(f"{where}.metadata needs stream, consumerGroup and lagCount (lag mode)")
    return LagTrigger(
        stream=str(meta["stream"]),
        group=str(meta["consumerGroup"]),
        lag_count=integer(meta, "lagCount", f"{where}.metadata", None, minimum=1),
        activation_lag_count=integer(meta, "activationLagCount", f"{where}.metadata", 0),
        address=str(meta.get("address", "")),
    )


def parse_env(item: Node, where: str) -> EnvVar:
    name = str(item.get("name", ""))
    if not name:
        raise ManifestError(f"{where}.name is missing")
    if "valueFrom" not in item:
        return EnvVar(name=name, value=str(item.get("value", "")))
    source = mapping(item["valueFrom"], f"{where}.valueFrom")
    for kind in ("secretKeyRef", "configMapKeyRef"):
        if kind in source:
            ref = mapping(source[kind], f"{where}.valueFrom.{kind}")
            key = (str(ref.get("name", "")), str(ref.get("key", "")))
            optional = bool(ref.get("optional", False))
            if kind == "secretKeyRef":
                return EnvVar(name=name, secret_ref=key, optional=optional)
            return EnvVar(name=name, config_map_ref=key, optional=optional)
    if "fieldRef" in source:
        path = mapping(source["fieldRef"], f"{where}.valueFrom.fieldRef").get("fieldPath")
        return EnvVar(name=name, field_path=str(path))
    raise ManifestError(
        f"{where}.valueFrom: only secretKeyRef, configMapKeyRef, fieldRef run locally"
    )


def parse_probe(node: Any) -> ExecProbe | None:
    if node is None:
        return None
    probe = mapping(node, "readinessProbe")
    command = mapping(probe.get("exec"), "readinessProbe.exec (only exec probes run locally)")
    return ExecProbe(
        command=tuple(str(arg) for arg in command.get("command") or ()),
        initial_delay_s=integer(probe, "initialDelaySeconds", "readinessProbe", 0),
        period_s=integer(probe, "periodSeconds", "readinessProbe", 10, minimum=1),
        timeout_s=integer(probe, "timeoutSeconds", "readinessProbe", 1, minimum=1),
    )


def empty_dir_mounts(pod: Node, container: Node) -> tuple[str, ...]:
    volumes = pod.get("volumes") or ()
    empty = {v["name"] for v in volumes if isinstance(v, Mapping) and "emptyDir" in v}
    mounts = container.get("volumeMounts") or ()
    return tuple(str(m["mountPath"]) for m in mounts if m.get("name") in empty)


def parse_job(spec: Node) -> JobTemplate:
    job = mapping(spec.get("jobTargetRef"), "spec.jobTargetRef")
    template = mapping(job.get("template"), "spec.jobTargetRef.template")
    pod = mapping(template.get("spec"), "spec.jobTargetRef.template.spec")
    containers = list(pod.get("containers") or [])
    if len(containers) != 1:
        raise ManifestError("spec.jobTargetRef.template.spec.containers: exactly one container")
    container = mapping(containers[0], "containers[0]")
    words = [*(container.get("command") or ()), *(container.get("args") or ())]
    command = tuple(str(word) for word in words)
    if not command:
        raise ManifestError("containers[0].command is needed to run the Job locally")
    where = "containers[0].env"
    return JobTemplate(
        command=command,
        env=tuple(
            parse_env(mapping(e, f"{where}[{i}]"), f"{where}[{i}]")
            for i, e in enumerate(container.get("env") or ())
        ),
        backoff_limit=integer(job, "backoffLimit", "spec.jobTargetRef", 6),
        active_deadline_s=optional_int(job, "activeDeadlineSeconds", "spec.jobTargetRef"),
        grace_period_s=integer(pod, "terminationGracePeriodSeconds", "pod spec", 30),
        empty_dir_mounts=empty_dir_mounts(pod, container),
        readiness=parse_probe(container.get("readinessProbe")),
    )


def parse_manifest(document: Any) -> ScaledJobManifest:
    """The ScaledJob `document` (one parsed YAML document) as a ScaledJobManifest."""
    root = mapping(document, "manifest")
    if root.get("kind") != "ScaledJob" or root.get("apiVersion") != "keda.sh/v1alpha1":
        raise ManifestError("manifest must be apiVersion keda.sh/v1alpha1, kind ScaledJob")
    meta = mapping(root.get("metadata"), "metadata")
    spec = mapping(root.get("spec"), "spec")
    triggers = spec.get("triggers") or ()
    if not triggers:
        raise ManifestError("spec.triggers must list at least one trigger")
    return ScaledJobManifest(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or "default"),
        polling_interval_s=integer(spec, "pollingInterval", "spec", 30, minimum=1),
        bounds=ReplicaBounds(
            optional_int(spec, "minReplicaCount", "spec"),
            optional_int(spec, "maxReplicaCount", "spec"),
        ),
        strategy=parse_strategy(spec),
        successful_jobs_history_limit=integer(spec, "successfulJobsHistoryLimit", "spec", 100),
        failed_jobs_history_limit=integer(spec, "failedJobsHistoryLimit", "spec", 100),
        rollout_strategy=str(mapping(spec.get("rollout", {}), "rollout").get("strategy", "")),
        triggers=tuple(
            parse_trigger(mapping(t, f"spec.triggers[{i}]"), f"spec.triggers[{i}]")
            for i, t in enumerate(triggers)
        ),
        job=parse_job(spec),
    )


def load_manifest(path: Path) -> ScaledJobManifest:
    """Read the ScaledJob from a YAML file (the first ScaledJob if it holds several documents)."""
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as error:
        raise ManifestError(f"cannot read {path}: {error}") from None
    for document in documents:
        if isinstance(document, Mapping) and document.get("kind") == "ScaledJob":
            manifest = parse_manifest(document)
            if not manifest.name:
                raise ManifestError("metadata.name is missing")
            return manifest
    raise ManifestError(f"{path} holds no ScaledJob")
