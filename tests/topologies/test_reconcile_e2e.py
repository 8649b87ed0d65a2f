"""The same end-to-end reconciliation as the standalone smoke test (tests/loadtest/test_smoke.py)
on the local Redis Cluster with one and with three shards, and behind Sentinel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import private_database
from tests.support.loadrun import assert_reconciled, finished, load_run_env, start_load_run
from tests.support.rediscluster import LocalCluster
from tests.support.redissentinel import LocalSentinel
from votecontract.names import ENV_REDIS_MODE, ENV_VOTE_SHARDS, StreamNames

pytestmark = pytest.mark.slow


@pytest.fixture
def empty_database() -> Iterator[str]:
    """No schema: the run applies the processor's migrations, as `make loadtest` does."""
    with private_database("topology") as url:
        yield url


@pytest.mark.redis_cluster
@pytest.mark.timeout(180)
@pytest.mark.parametrize("shards", [1, 3])
def test_a_load_test_reconciles_on_the_cluster(
    redis_cluster: LocalCluster,
    cluster_prefix: str,
    empty_database: str,
    tmp_path: Path,
    shards: int,
) -> None:
    names = StreamNames(f"{cluster_prefix}votes", "processors")
    topology = {ENV_REDIS_MODE: "cluster", ENV_VOTE_SHARDS: str(shards)}
    env = load_run_env(redis_cluster.url, empty_database, names, topology)
    assert_reconciled(*finished(start_load_run(tmp_path, env), tmp_path))


@pytest.mark.redis_sentinel
@pytest.mark.timeout(180)
def test_a_load_test_reconciles_behind_sentinel(
    redis_sentinel: LocalSentinel, sentinel_prefix: str, empty_database: str, tmp_path: Path
) -> None:
    names = StreamNames(f"{sentinel_prefix}votes", "processors")
    topology = redis_sentinel.environ() | {ENV_VOTE_SHARDS: "2"}
    env = load_run_env(redis_sentinel.url, empty_database, names, topology)
    assert_reconciled(*finished(start_load_run(tmp_path, env), tmp_path))
