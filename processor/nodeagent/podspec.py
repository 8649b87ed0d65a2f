"""One container of a pod as a local process: its argv, environment and volumes, resolved as
the kubelet resolves them.

- argv: Kubernetes' rule over the image's ENTRYPOINT/CMD (image.container_argv); `python` is
  the agent's interpreter (the project's virtualenv).
- env: the image's ENV, then `envFrom` in order, then `env` (later wins); `value` with
  `$(VAR)` expansion of earlier variables, `secretKeyRef`, `configMapKeyRef` (`optional`
  honoured) and `fieldRef` read from the API server's objects.
- volumes: `emptyDir`, `secret` and `configMap` become directories under the pod's own
  directory (secret and configMap files written with their `defaultMode`); every mount path
  in argv, env values and probe commands is rewritten to its directory; a `/tmp` mount also
  becomes TMPDIR.
- network: the pod has a loopback address of its own (its pod IP); `0.0.0.0` (all of the
  container's interfaces) in an env value means that address.
Anything else (other volume types, resourceFieldRef, other images) raises PodSpecError with
the reason the pod is refused.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processor.nodeagent.image import ImageConfig, container_argv
from processor.scaledjob.podenv import local_command

HOST_BASICS = ("PATH", "LANG", "LC_ALL", "TZ")
ALL_INTERFACES = "0.0.0.0"
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")

# (kind, namespace, name) -> the object's data as text, or None when it does not exist.
ObjectData = Callable[[str, str, str], dict[str, str] | None]


class PodSpecError(ValueError):
    """The pod cannot be run locally; the message is the reason reported on the pod."""


class MissingObjectError(PodSpecError):
    """A Secret or ConfigMap the pod needs does not exist (yet): the kubelet waits for it."""


@dataclass(frozen=True, slots=True)
class ContainerPlan:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    mounts: dict[str, Path]


def field_value(pod: Mapping[str, Any], path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match[1]) or {}).get(match[2], ""))
    raise PodSpecError(f"fieldRef {path} is not supported by the node agent")


def expand(value: str, env: Mapping[str, str]) -> str:
    """`$(VAR)` of an earlier variable replaced; `$$(VAR)` escapes; unknown refs stay."""

    def one(match: re.Match[str]) -> str:
        start = match.start()
        if start > 0 and match.string[start - 1] == "$":
            return match[0]
        return env.get(match[1], match[0])

    return _VAR_REF.sub(one, value).replace("$$(", "$(")


def key_ref(ref: Mapping[str, Any], kind: str, namespace: str, data: ObjectData) -> str | None:
    found = data(kind, namespace, ref["name"])
    if found is not None and ref["key"] in found:
        return found[ref["key"]]
    if ref.get("optional"):
        return None
    raise MissingObjectError(f"{kind} {ref['name']!r} or its key {ref['key']!r} does not exist")


def env_from(source: Mapping[str, Any], namespace: str, data: ObjectData) -> dict[str, str]:
    kind, ref = (
        ("secret", source["secretRef"])
        if "secretRef" in source
        else ("configmap", source["configMapRef"])
    )
    found = data(kind, namespace, ref["name"])
    if found is None:
        if ref.get("optional"):
            return {}
        raise MissingObjectError(f"{kind} {ref['name']!r} (envFrom) does not exist")
    prefix = source.get("prefix", "")
    return {prefix + key: value for key, value in found.items()}


def env_var(
    var: Mapping[str, Any], pod: Mapping[str, Any], env: Mapping[str, str], data: ObjectData
) -> str | None:
    source = var.get("valueFrom")
    if source is None:
        return expand(var.get("value", ""), env)
    namespace = pod["metadata"]["namespace"]
    if "secretKeyRef" in source:
        return key_ref(source["secretKeyRef"], "secret", namespace, data)
    if "configMapKeyRef" in source:
        return key_ref(source["configMapKeyRef"], "configmap", namespace, data)
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    raise PodSpecError(f"env {var['name']}: {', '.join(source)} is not supported")


def container_env(
    container: Mapping[str, Any], pod: Mapping[str, Any], image: ImageConfig, data: ObjectData
) -> dict[str, str]:
    env = {name: os.environ[name] for name in HOST_BASICS if name in os.environ}
    env.update(image.env)
    namespace = pod["metadata"]["namespace"]
    for source in container.get("envFrom") or ():
        env.update(env_from(source, namespace, data))
    for var in container.get("env") or ():
        value = env_var(var, pod, env, data)
        if value is not None:
            env[var["name"]] = value
    return env


def rewrite(text: str, mounts: Mapping[str, Path]) -> str:
    """Every mount path in `text` (at a path boundary) replaced by its local directory, in one
    pass, so that a directory just put in is never rewritten again."""
    if not mounts:
        return text
    by_path = {mount.rstrip("/") or "/": local for mount, local in mounts.items()}
    choices = "|".join(re.escape(mount) for mount in sorted(by_path, key=len, reverse=True))
    pattern = r"(?<![\w.-])(" + choices + r")(?=/|$|[^\w.-])"
    return re.sub(pattern, lambda match: str(by_path[match[1]]), text)


def rewrite_hosts(text: str, hosts: Mapping[str, str]) -> str:
    """Every Service host name in `text` (at a host-name boundary) replaced by its address."""
    if not hosts:
        return text
    choices = "|".join(re.escape(name) for name in sorted(hosts, key=len, reverse=True))
    pattern = r"(?<![\w.-])(" + choices + r")(?![\w.-])"
    return re.sub(pattern, lambda match: hosts[match[1]], text)


def write_files(target: Path, data: Mapping[str, str], volume: Mapping[str, Any]) -> None:
    mode = int(volume.get("defaultMode", 0o644))
    items = volume.get("items")
    chosen = {item["key"]: item["path"] for item in items} if items else {k: k for k in data}
    for key, relative in chosen.items():
        if key not in data:
            raise MissingObjectError(f"volume key {key!r} does not exist")
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data[key])
        path.chmod(mode | 0o400)  # the agent's user must read what it mounts


def materialize(volume: Mapping[str, Any], target: Path, namespace: str, data: ObjectData) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if "emptyDir" in volume:
        return
    for kind, key, spec_key in (
        ("secret", "secretName", "secret"),
        ("configmap", "name", "configMap"),
    ):
        if spec_key in volume:
            spec = volume[spec_key]
            found = data(kind, namespace, spec[key])
            if found is None and not spec.get("optional"):
                raise MissingObjectError(f"{kind} {spec[key]!r} (volume) does not exist")
            write_files(target, found or {}, spec)
            return
    kinds = ", ".join(k for k in volume if k != "name")
    raise PodSpecError(f"volume {volume['name']}: {kinds} is not supported by the node agent")


def volume_mounts(
    pod: Mapping[str, Any], container: Mapping[str, Any], pod_dir: Path, data: ObjectData
) -> dict[str, Path]:
    """Materialize the pod's volumes; mount path -> local directory for this container."""
    namespace = pod["metadata"]["namespace"]
    local = {}
    for volume in pod["spec"].get("volumes") or ():
        local[volume["name"]] = pod_dir / "volumes" / volume["name"]
        materialize(volume, local[volume["name"]], namespace, data)
    mounts = {}
    for mount in container.get("volumeMounts") or ():
        if mount["name"] not in local:
            raise PodSpecError(f"volumeMount {mount['name']} names no volume")
        mounts[mount["mountPath"]] = local[mount["name"]] / mount.get("subPath", "")
    return mounts


def plan_container(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    image: ImageConfig,
    pod_dir: Path,
    data: ObjectData,
    hosts: Mapping[str, str] | None = None,
) -> ContainerPlan:
    """`hosts`: Service host names -> addresses (services.ServiceProxies.hosts)."""
    mounts = volume_mounts(pod, container, pod_dir, data)
    pod_ip = (pod.get("status") or {}).get("podIP", "127.0.0.1")
    hosts = hosts or {}
    env = {}
    for name, value in container_env(container, pod, image, data).items():
        local = rewrite_hosts(rewrite(value, mounts), hosts)
        env[name] = pod_ip if value == ALL_INTERFACES else local
    if "/tmp" in mounts:
        env["TMPDIR"] = str(mounts["/tmp"])
    argv = container_argv(image, container.get("command"), container.get("args"))
    words = (rewrite_hosts(rewrite(word, mounts), hosts) for word in argv)
    argv = local_command(tuple(expand(word, env) for word in words))
    return ContainerPlan(container["name"], argv, env, mounts)


def decode_secret(data: Mapping[str, str | bytes] | None) -> dict[str, str]:
    """A Secret's `data` (base64 text, as the API sends it) as text."""
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}
