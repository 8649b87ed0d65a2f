"""What one local pod sees: its command, its environment and its emptyDir volumes.

- `python`/`python3` as the container command means this interpreter (`sys.executable`).
- Literal env values are taken as written, with emptyDir mount paths rewritten (below).
- `secretKeyRef` / `configMapKeyRef`: the runner's own environment variable of the same NAME
  as the container variable (REDIS_URL from the runner's REDIS_URL); left unset when the runner
  has none, so the program's own default applies (`check_env_sources` lists them).
- `fieldRef`: the job-name labels give the Job name (the consumer name, kept across pod
  retries), `metadata.name` the pod name, `metadata.namespace` the manifest's namespace.
- PATH, HOME, locale and virtualenv variables pass through; nothing else of the runner's env.
- Each emptyDir mount is a directory under the Job's work directory; env values and probe
  arguments at or under a mount path point there instead.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from processor.scaledjob.manifest import EnvVar, JobTemplate, ManifestError, ScaledJobManifest

HOST_BASICS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
JOB_NAME_FIELDS = (
    "metadata.labels['batch.kubernetes.io/job-name']",
    "metadata.labels['job-name']",
)
SUPPORTED_FIELDS = (*JOB_NAME_FIELDS, "metadata.name", "metadata.namespace")


@dataclass(frozen=True, slots=True)
class PodIdentity:
    job_name: str
    pod_name: str
    namespace: str


def local_command(command: tuple[str, ...]) -> tuple[str, ...]:
    """The container command with `python`/`python3` replaced by this interpreter."""
    if command and command[0] in ("python", "python3"):
        return (sys.executable, *command[1:])
    return command


def check_env_sources(manifest: ScaledJobManifest, host_env: Mapping[str, str]) -> list[str]:
    """Names of secret/config values the runner's env lacks; ManifestError for unknown fields."""
    missing = []
    for var in manifest.job.env:
        if var.field_path is not None and var.field_path not in SUPPORTED_FIELDS:
            raise ManifestError(f"env {var.name}: fieldRef {var.field_path} is not run locally")
        if (var.secret_ref or var.config_map_ref) and var.name not in host_env:
            missing.append(var.name)
    return missing


def volume_dirs(template: JobTemplate, workdir: Path) -> dict[str, Path]:
    """emptyDir mount path -> the Job's local directory for it."""
    return {
        mount.rstrip("/") or "/": workdir / f"volume-{index}"
        for index, mount in enumerate(template.empty_dir_mounts)
    }


def localize(value: str, mounts: Mapping[str, Path]) -> str:
    for mount, local in mounts.items():
        if value == mount or value.startswith(mount + "/"):
            return str(local) + value[len(mount) :]
    return value


def env_value(
    var: EnvVar, pod: PodIdentity, host_env: Mapping[str, str], mounts: Mapping[str, Path]
) -> str | None:
    if var.secret_ref or var.config_map_ref:
        return host_env.get(var.name)
    if var.field_path in JOB_NAME_FIELDS:
        return pod.job_name
    if var.field_path == "metadata.name":
        return pod.pod_name
    if var.field_path == "metadata.namespace":
        return pod.namespace
    return localize(var.value or "", mounts)


def pod_env(
    template: JobTemplate,
    pod: PodIdentity,
    host_env: Mapping[str, str],
    mounts: Mapping[str, Path],
) -> dict[str, str]:
    """The environment of one pod of the Job."""
    env = {name: host_env[name] for name in HOST_BASICS if name in host_env}
    for var in template.env:
        value = env_value(var, pod, host_env, mounts)
        if value is not None:
            env[var.name] = value
    return env
