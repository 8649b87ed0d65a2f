"""The chart's bundled Redis: its start script renders helm/files/redis-users.acl with the
Secret's passwords into an ACL file redis-server loads, and the URLs in the components'
Secrets log in as their own users."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import redis
from redis.exceptions import NoPermissionError

from tests.support.helmchart import find, keda_auth, pod_spec, render, render_values
from tests.support.servers import ThrowawayRedis, free_port

pytestmark = [pytest.mark.helm, pytest.mark.security]

# Every character RFC 3986 reserves, the percent sign, a quote, a backslash and a space.
NASTY = "@:/?#[]%!$&'()*+,;=\\\" x"
GIVEN = {
    "password": f"admin{NASTY}",
    "ingestPassword": f"ingest{NASTY}",
    "processorPassword": f"processor{NASTY}",
    "kedaPassword": f"keda{NASTY}",
}


@pytest.mark.parametrize(
    "passwords", [{}, GIVEN], ids=["generated", "given with reserved characters"]
)
def test_the_rendered_acl_loads_and_each_secret_url_logs_in(
    tmp_path: Path, passwords: dict[str, str]
) -> None:
    manifests = render_values("3.17.2", {"config": {"voteStream": "ballots"}, "redis": passwords})
    config = find(manifests, "ConfigMap", "vote-pipeline-redis")["data"]
    script = pod_spec(find(manifests, "StatefulSet", "vote-pipeline-redis"))["containers"][0]
    secret = find(manifests, "Secret", "vote-pipeline")["stringData"]
    (tmp_path / "users.acl.template").write_text(config["users.acl.template"])
    command = script["command"][-1].replace("/etc/redis/", f"{tmp_path}/")
    command = command.replace("/run/redis/", f"{tmp_path}/").replace("exec redis-server", "true")
    env = {
        "PATH": os.environ["PATH"],
        "REDISCLI_AUTH": secret["REDIS_ADMIN_PASSWORD"],
        "REDIS_INGEST_PASSWORD": secret["REDIS_INGEST_PASSWORD"],
        "REDIS_PROCESSOR_PASSWORD": secret["REDIS_PROCESSOR_PASSWORD"],
        "REDIS_KEDA_PASSWORD": secret["REDIS_PASSWORD"],
    }
    subprocess.run(["sh", "-c", command], env=env, check=True, timeout=30)
    server = ThrowawayRedis(free_port(), tmp_path, ("--aclfile", str(tmp_path / "users.acl")))
    server.start()
    try:
        here = f"127.0.0.1:{server.port}"
        clients = {
            role: redis.Redis.from_url(
                find(manifests, "Secret", f"vote-pipeline-{role}")["stringData"][
                    "REDIS_URL"
                ].replace("vote-pipeline-redis:6379", here)
            )
            for role in ("ingest", "processor")
        }
        assert clients["ingest"].xlen("ballots") == 0
        with pytest.raises(redis.ResponseError, match="NOGROUP"):
            clients["processor"].xpending("ballots", "g")
        for client in clients.values():
            with pytest.raises(NoPermissionError):
                client.xlen("votes")  # the ACL follows config.voteStream
            client.close()
        kedas = keda_auth(manifests)  # what KEDA's operator logs in with
        keda = redis.Redis(port=server.port, username=kedas["username"], password=kedas["password"])
        assert keda.ping()
        admin = redis.Redis(port=server.port, password=secret["REDIS_ADMIN_PASSWORD"])
        assert {user.split()[1] for user in admin.acl_list()} == {
            "default", "ingest", "processor", "keda",
        }  # fmt: skip
        keda.close()
        admin.close()
    finally:
        server.stop()


def test_components_use_the_app_role_and_mount_the_tls_secret() -> None:
    manifests = render("3.17.2", "--set", "tls.secretName=vote-tls")
    secret = find(manifests, "Secret", "vote-pipeline")["stringData"]
    for role in ("ingest", "processor"):
        own = find(manifests, "Secret", f"vote-pipeline-{role}")["stringData"]
        assert own["DATABASE_URL"].startswith(
            f"postgresql://votes_app:{secret['POSTGRES_APP_PASSWORD']}@"
        )
        assert "REDIS_ADMIN_PASSWORD" not in own
    assert secret["DATABASE_URL"].startswith("postgresql://votes:")
    migration = find(manifests, "Job", "vote-pipeline-migration")
    env = {item["name"]: item for item in pod_spec(migration)["containers"][0]["env"]}
    assert env["DATABASE_APP_ROLE"]["value"] == "votes_app"
    for kind, name in (("Deployment", "ingest"), ("ScaledJob", "processor"), ("Job", "migration")):
        spec = pod_spec(find(manifests, kind, f"vote-pipeline-{name}"))
        assert {"name": "tls", "secret": {"secretName": "vote-tls", "defaultMode": 0o440}} in spec[
            "volumes"
        ]
        mounts = spec["containers"][0]["volumeMounts"]
        assert {"name": "tls", "mountPath": "/etc/vote-pipeline/tls", "readOnly": True} in mounts
    postgres = pod_spec(find(manifests, "StatefulSet", "vote-pipeline-postgres"))
    assert "/docker-entrypoint-initdb.d" in {
        m["mountPath"] for m in postgres["containers"][0]["volumeMounts"]
    }
