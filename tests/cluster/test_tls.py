"""Issue 14's last point on the real control plane: the release's Redis speaks TLS only, with a
server certificate of a private CA the test makes, the shipped ACL users and passwords full of
reserved characters. KEDA polls over TLS with the CA the TriggerAuthentication hands it (`ca`),
ingest and the processor Jobs verify the server with the CA mounted from tls.secretName; every
vote is recorded once. Installed and removed with helm 4 (test_lifecycle.py covers helm 3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.support.certs import make_certificates
from tests.support.cluster import (
    Cluster,
    ReleaseServers,
    keda_errors,
    keda_polls,
    start_release_servers,
    stop_release_servers,
    wait_for,
)
from tests.support.clusterrelease import installed, post_and_record_once

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

HELM = "4"
NAMESPACE, RELEASE, SECRET = "votes-tls", "votes", "redis-tls"
SCALEDJOB = f"{RELEASE}-vote-pipeline-processor"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReleaseServers]:
    workdir = tmp_path_factory.mktemp("release-tls")
    tls = make_certificates(workdir / "certs")
    started = start_release_servers(workdir, "tls", tls)
    try:
        yield started
    finally:
        stop_release_servers(started)


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, servers: ReleaseServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    assert servers.ca is not None
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    cluster.kubectl("delete", "secret", SECRET, "-n", NAMESPACE, check=False)
    cluster.kubectl(
        "create", "secret", "generic", SECRET, "-n", NAMESPACE, f"--from-file=ca.crt={servers.ca}"
    )
    values = servers.values(
        tls={"secretName": SECRET}, processor={"lagCount": 50, "maxReplicaCount": 4}
    )
    path = tmp_path_factory.mktemp("values-tls") / "values.json"
    with installed(cluster, HELM, RELEASE, NAMESPACE, values, path) as release_values:
        yield release_values


def test_tls_keda_polls_with_the_private_ca_and_every_vote_is_recorded_once(
    cluster: Cluster, servers: ReleaseServers, release: dict[str, Any]
) -> None:
    since = release["keda_log_offset"]
    wait_for("KEDA's first poll", lambda: keda_polls(cluster.keda_log(), SCALEDJOB, since))
    post_and_record_once(cluster, servers, NAMESPACE)
    polls = keda_polls(cluster.keda_log(), SCALEDJOB, since)
    assert sum(p.created for p in polls) >= 1, polls
    errors = keda_errors(cluster.keda_log(), since, SCALEDJOB, NAMESPACE)
    assert errors == [], errors[:3]
    admin = redis.Redis.from_url(servers.admin_url(), decode_responses=True)
    assert admin.acl_log() == [], "an ACL user was refused (WRONGPASS or NOPERM)"
    users = {c.get("user") for c in admin.client_list()}
    assert {"keda", "ingest"} <= users, users  # TLS is the only port: these came over TLS
    group = admin.xinfo_groups("votes")[0]
    assert (group["lag"], group["pending"]) == (0, 0), group
