"""Fixtures of the topology tests over TLS: a private CA, and a Redis Cluster and a Sentinel
setup that speak only TLS (client certificates required), each shared by the session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import TlsFiles, make_certificates
from tests.support.rediscluster import LocalCluster
from tests.support.redissentinel import LocalSentinel
from tests.support.servers import running


@pytest.fixture(scope="session")
def topology_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_certificates(tmp_path_factory.mktemp("topology-tls"))


@pytest.fixture(scope="session")
def tls_cluster(
    tmp_path_factory: pytest.TempPathFactory, topology_tls: TlsFiles
) -> Iterator[LocalCluster]:
    """3 masters and 3 replicas on TLS ports only: clients, the bus and replication."""
    with running(LocalCluster(tmp_path_factory.mktemp("tls-cluster"), tls=topology_tls)) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def tls_sentinel(
    tmp_path_factory: pytest.TempPathFactory, topology_tls: TlsFiles
) -> Iterator[LocalSentinel]:
    """A master, a replica and three sentinels on TLS ports only."""
    with running(LocalSentinel(tmp_path_factory.mktemp("tls-sentinel"), tls=topology_tls)) as setup:
        yield setup


@pytest.fixture
def fresh_tls_sentinel(tmp_path: Path, topology_tls: TlsFiles) -> Iterator[LocalSentinel]:
    """A TLS-only sentinel setup of this test's own, which it may fail over."""
    with running(LocalSentinel(tmp_path / "tls-sentinel", tls=topology_tls)) as setup:
        yield setup


@pytest.fixture
def tls_cluster_prefix(tls_cluster: LocalCluster) -> Iterator[str]:
    """A key prefix of this test's own on the TLS cluster; its keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    tls_cluster.delete_keys(f"*{prefix}*")


@pytest.fixture
def tls_sentinel_prefix(tls_sentinel: LocalSentinel) -> Iterator[str]:
    """A key prefix of this test's own on the TLS sentinel setup's master."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    tls_sentinel.delete_keys(f"*{prefix}*")
