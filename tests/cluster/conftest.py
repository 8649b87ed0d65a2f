"""Fixtures of the `cluster` tests: the real control plane with the node agent (one per session,
or the one CLUSTER_STATE names), and the release's own Redis and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import (
    Cluster,
    ReleaseServers,
    start_cluster,
    start_release_servers,
    stop_cluster,
    stop_release_servers,
)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    given = os.environ.get("CLUSTER_STATE")
    if given:
        yield Cluster(Path(given))
        return
    started = start_cluster(tmp_path_factory.mktemp("controlplane") / "state")
    try:
        yield started
    finally:
        stop_cluster(started)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReleaseServers]:
    started = start_release_servers(tmp_path_factory.mktemp("release"), "release")
    try:
        yield started
    finally:
        stop_release_servers(started)
