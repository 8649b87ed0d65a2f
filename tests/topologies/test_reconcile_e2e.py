"""The same end-to-end reconciliation as the standalone smoke test (tests/loadtest/test_smoke.py)
on the local Redis Cluster with one and with three shards, and behind Sentinel, also across a
failover in the middle of the run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import private_database
from tests.support.loadrun import assert_reconciled, finished, load_run_env, start_load_run
from tests.support.rediscluster import LocalCluster
from tests.support.redissentinel import LocalSentinel
from votecontract.names import (
    ENV_ACK_DURABILITY,
    ENV_CLAIM_MIN_IDLE_MS,
    ENV_REDIS_MODE,
    ENV_VOTE_SHARDS,
    StreamNames,
)

# Votes stored before the failover, and accepted in the whole run (so hundreds after it).
BEFORE_FAILOVER, MIN_VOTES = 100, 600

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


def votes_added(setup: LocalSentinel, prefix: str) -> int:
    """Entries ever added to the streams holding `prefix`, on the current master (trimming
    aside)."""
    with setup.connect(setup.master_port(), socket_timeout=5) as client:
        keys = [
            key for key in client.scan_iter(match=f"*{prefix}*") if client.type(key) == b"stream"
        ]
        return sum(int(client.xinfo_stream(key)["entries-added"]) for key in keys)


@pytest.mark.redis_sentinel
@pytest.mark.timeout(300)
def test_a_load_test_reconciles_across_a_sentinel_failover(
    fresh_sentinel: LocalSentinel, empty_database: str, tmp_path: Path
) -> None:
    # At ACK_DURABILITY=replica a 202 means the promoted replica holds the vote: every vote
    # acknowledged before, during and after the failover is recorded once by the Jobs. XACKs
    # the replica had not received yet are lost with the old master: those entries are pending
    # again, already recorded, and start no Job (KEDA's lag counts only undelivered entries);
    # the sweeper (here every 2 s, claiming after 1 s idle) re-reads them, which the idempotent
    # writes ignore. 503s then are unknown outcomes (docs/ingest.md), counted as such.
    names = StreamNames("votes", "processors")  # a setup of its own: no prefix needed
    topology = fresh_sentinel.environ() | {
        ENV_VOTE_SHARDS: "2",
        ENV_ACK_DURABILITY: "replica",
        ENV_CLAIM_MIN_IDLE_MS: "1000",
    }
    env = load_run_env(fresh_sentinel.url, empty_database, names, topology)
    run = start_load_run(tmp_path, env, min_votes=MIN_VOTES, sweep_interval_s=2.0)
    try:
        deadline = time.monotonic() + 120
        while votes_added(fresh_sentinel, "") < BEFORE_FAILOVER:
            assert run.poll() is None, finished(run, tmp_path)[1]
            assert time.monotonic() < deadline, "no votes reached Redis"
            time.sleep(0.05)
        fresh_sentinel.failover()
        fresh_sentinel.wait_settled(fresh_sentinel.master_port())
        code, output, summary = finished(run, tmp_path)
    finally:
        run.kill()
    assert_reconciled(code, output, summary)
    assert isinstance(summary["accepted"], int)
    assert summary["accepted"] >= MIN_VOTES, output
