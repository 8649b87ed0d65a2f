"""The bundled Redis and PostgreSQL: a chart upgrade that changes nothing of theirs leaves
their pods alone, and Redis refuses writes (noeviction) before the container's memory limit
is reached instead of being OOM-killed (rendered by helm 3 and 4; Redis run as rendered)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from tests.support.helmchart import (
    CHART,
    HELM_VERSIONS,
    Manifest,
    find,
    pod_spec,
    render,
    render_values,
)
from tests.support.servers import free_port

pytestmark = pytest.mark.helm

DATABASES = ("vote-pipeline-redis", "vote-pipeline-postgres")
PASSWORDS = ("--values", str(CHART / "ci" / "gitops-values.yaml"))


def bumped_chart(tmp_path: Path) -> Path:
    """A copy of the chart with a new chart version and appVersion."""
    chart = tmp_path / "vote-pipeline"
    shutil.copytree(CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"], meta["appVersion"] = "9.9.9", "9.9.9"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    return chart


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_a_chart_bump_does_not_restart_the_databases(version: str, tmp_path: Path) -> None:
    before = render(version, *PASSWORDS)
    after = render(version, *PASSWORDS, chart=bumped_chart(tmp_path))
    for name in DATABASES:
        old, new = (find(docs, "StatefulSet", name)["spec"]["template"] for docs in (before, after))
        assert old == new, name
    # ...while the pipeline's own pods do roll to the new version.
    old, new = (find(docs, "Deployment")["spec"]["template"] for docs in (before, after))
    assert old != new


def start_command(
    manifests: list[Manifest], workdir: Path, port: int
) -> tuple[str, dict[str, str]]:
    """The bundled Redis's start script and environment, pointed at `workdir` and `port`."""
    config = find(manifests, "ConfigMap", "vote-pipeline-redis")["data"]
    conf = config["redis.conf"].replace("port 6379", f"port {port}")
    conf = conf.replace("dir /data", f"dir {workdir}") + "bind 127.0.0.1\n"
    (workdir / "redis.conf").write_text(conf)
    (workdir / "users.acl.template").write_text(config["users.acl.template"])
    container = pod_spec(find(manifests, "StatefulSet", "vote-pipeline-redis"))["containers"][0]
    command = container["command"][-1].replace("/etc/redis/", f"{workdir}/")
    command = command.replace("/run/redis/", f"{workdir}/")
    secret = find(manifests, "Secret", "vote-pipeline")["stringData"]
    env = {"PATH": os.environ["PATH"]}
    for item in container["env"]:
        source = item.get("valueFrom", {})
        if "secretKeyRef" in source:
            env[item["name"]] = secret[source["secretKeyRef"]["key"]]
        elif "resourceFieldRef" in source:
            field = source["resourceFieldRef"]
            assert (field["containerName"], field["resource"]) == ("redis", "limits.memory")
            env[item["name"]] = str(512 * 2**20)  # the kubelet's value for a 512Mi limit
        else:
            env[item["name"]] = item["value"]
    return command, env


@pytest.fixture
def bundled_redis(tmp_path: Path) -> Iterator[tuple[redis.Redis, list[Manifest]]]:
    manifests = render_values(
        HELM_VERSIONS[0], {"redis": {"resources": {"limits": {"memory": "512Mi"}}}}, *PASSWORDS
    )
    port = free_port()
    command, env = start_command(manifests, tmp_path, port)
    process = subprocess.Popen(["sh", "-c", command], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "redis-server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not listen"
                time.sleep(0.02)
        admin = find(manifests, "Secret", "vote-pipeline")["stringData"]["REDIS_ADMIN_PASSWORD"]
        with redis.Redis(port=port, password=admin, decode_responses=True) as client:
            yield client, manifests
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_bundled_redis_refuses_writes_before_its_memory_limit(
    bundled_redis: tuple[redis.Redis, list[Manifest]],
) -> None:
    client, _ = bundled_redis
    limit = 512 * 2**20
    maxmemory = int(client.config_get("maxmemory")["maxmemory"])
    assert 0 < maxmemory <= limit * 0.8
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
