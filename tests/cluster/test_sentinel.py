"""The chart's sentinel mode on the real control plane, with the real KEDA operator: KEDA's
`redis-sentinel-streams` trigger asks the sentinels for the master as the sentinels' own ACL
user and polls the master as the `keda` user; ingest and the Jobs find the master the same
way, each as its own user. Redis is a master, a replica and three sentinels of the test's own
(plain TCP: TLS behind sentinels is tests/topologies/test_tls.py), with the chart's ACL users
on both servers (ACLs are not replicated) and ACK_DURABILITY=replica, the level at which an
answered vote survives a failover (docs/guarantees.md). Every vote is recorded once, before
and after the master is killed and the sentinels fail over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from tests.support.cluster import (
    WAIT_S,
    Cluster,
    ReleaseServers,
    keda_errors,
    keda_polls,
    wait_for,
)
from tests.support.clusterrelease import (
    ingest_address,
    installed,
    post_and_record_once,
    post_votes,
    recorded,
    unrecorded,
)
from tests.support.polling import eventually
from tests.support.redisacl import ROLES, refused, role_lines
from tests.support.redissentinel import MASTER_NAME, SENTINEL_USER_RULES, LocalSentinel
from tests.support.servers import running
from votecontract.names import StreamNames

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

HELM = "4"
NAMESPACE, RELEASE = "votes-sentinel", "votes"
SCALEDJOB = f"{RELEASE}-vote-pipeline-processor"
SENTINEL_USER, SENTINEL_PASSWORD = "votes-sentinel", "sentinel-pw-:@/%#?"
ADMIN_PASSWORD = "sentinel-admin-pw"  # the test's own login to the sentinels (user default)
# A Job claims a vote left pending by a Job that lost the old master after this long.
CLAIM_MIN_IDLE_MS = 3000


@pytest.fixture(scope="module")
def sentinel(
    servers: ReleaseServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSentinel]:
    with running(LocalSentinel(tmp_path_factory.mktemp("sentinel") / "setup")) as setup:
        lines = role_lines(StreamNames(), 1, servers.passwords)
        for server in setup.servers:
            with setup.connect(server.port) as client:
                for role in ROLES:
                    client.execute_command("ACL", "SETUSER", role, *lines[role][1:])
        for process in setup.sentinels:
            with process.client() as client:
                client.execute_command("ACL", "SETUSER", SENTINEL_USER, "on",
                                       f">{SENTINEL_PASSWORD}", *SENTINEL_USER_RULES)  # fmt: skip
                # The sentinels log in to each other from now on...
                client.execute_command("SENTINEL", "CONFIG", "SET", "sentinel-user", "default")
                client.execute_command("SENTINEL", "CONFIG", "SET", "sentinel-pass", ADMIN_PASSWORD)
        for process in setup.sentinels:
            with process.client() as client:
                # ...and so must every client: one that ignored sentinelUsername gets NOAUTH.
                client.execute_command(
                    "ACL", "SETUSER", "default", "resetpass", f">{ADMIN_PASSWORD}"
                )
            process.password = ADMIN_PASSWORD
        yield setup


@pytest.fixture(scope="module")
def release(
    cluster: Cluster,
    servers: ReleaseServers,
    sentinel: LocalSentinel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    values = servers.values(
        externalRedis={
            "address": "sentinel-managed:6379",  # unused in sentinel mode
            "sentinels": sentinel.addresses,
            "sentinelMaster": MASTER_NAME,
            "sentinelUsername": SENTINEL_USER,
            "sentinelPassword": SENTINEL_PASSWORD,
        },
        config={"redisMode": "sentinel", "ackDurability": "replica"},
        processor={
            "lagCount": 50,
            "maxReplicaCount": 4,
            "claimMinIdleMs": CLAIM_MIN_IDLE_MS,
        },
    )
    path = tmp_path_factory.mktemp("values-sentinel") / "values.json"
    with installed(cluster, HELM, RELEASE, NAMESPACE, values, path) as release_values:
        yield release_values


def test_keda_polls_through_the_sentinels_and_every_vote_is_recorded_once(
    cluster: Cluster, servers: ReleaseServers, sentinel: LocalSentinel, release: dict[str, Any]
) -> None:
    since = release["keda_log_offset"]
    wait_for("KEDA's first poll", lambda: keda_polls(cluster.keda_log(), SCALEDJOB, since))
    post_and_record_once(cluster, servers, NAMESPACE)
    polls = keda_polls(cluster.keda_log(), SCALEDJOB, since)
    assert sum(p.created for p in polls) >= 1, polls
    assert max(p.queue_length for p in polls) >= 1, "KEDA never saw the lag"
    errors = keda_errors(cluster.keda_log(), since, SCALEDJOB, NAMESPACE)
    assert errors == [], errors[:3]
    master_port = sentinel.master_port()
    with sentinel.connect(master_port, decode_responses=True) as master:
        users = {client.get("user") for client in master.client_list()}
        assert {"keda", "ingest"} <= users, users
        group = master.xinfo_groups("votes")[0]
        assert (group["lag"], group["pending"]) == (0, 0), group
    master_only = [sentinel.connect(master_port, decode_responses=True)]
    assert refused(master_only) == [], "a role was refused on the master"
    sentinels = (process.client() for process in sentinel.sentinels)
    assert refused(sentinels) == [], "a login to a sentinel was refused a command"


def test_a_killed_master_is_failed_over_and_every_answered_vote_is_recorded_once(
    cluster: Cluster, servers: ReleaseServers, sentinel: LocalSentinel, release: dict[str, Any]
) -> None:
    base = ingest_address(cluster, NAMESPACE)
    old_master = sentinel.master_port()
    answered, keda_offset = asyncio.run(votes_through_a_failover(cluster, sentinel, base))
    assert sentinel.master_port() != old_master
    answered += settle(servers, base, answered)
    events, ids, tally = asyncio.run(recorded(servers.pg_url("app")))
    assert events == ids == tally, "a vote recorded or counted twice"
    polls = keda_polls(cluster.keda_log(), SCALEDJOB, keda_offset)
    assert sum(p.created for p in polls) >= 1, "KEDA started no Job after the failover"
    assert max(p.queue_length for p in polls) >= 1, "KEDA never saw the new master's lag"


async def votes_through_a_failover(
    cluster: Cluster, sentinel: LocalSentinel, base: str
) -> tuple[list[str], int]:
    """Votes posted while the master is SIGKILLed, failed over and restarted as a replica, and
    until 100 more were answered 202 after that; the 202s, and KEDA's log offset after the
    failover. At ACK_DURABILITY=replica ingest answers 503 while no replica confirms."""
    answered: list[str] = []
    stop = asyncio.Event()

    async def keep_voting() -> None:
        while not stop.is_set():
            answered.extend(await post_votes(base, 20, unavailable_ok=True))

    async def answered_at_least(count: int) -> bool:
        return len(answered) >= count

    voting = asyncio.create_task(keep_voting())
    try:
        before = partial(answered_at_least, 100)
        await eventually(before, "votes answered before the kill", WAIT_S, every_s=0.2)
        killed, _ = await asyncio.to_thread(sentinel.kill_master)
        keda_offset = cluster.keda_log().stat().st_size
        await asyncio.to_thread(sentinel.restart, killed)
        after = partial(answered_at_least, len(answered) + 100)
        await eventually(after, "votes answered after the failover", WAIT_S, every_s=0.2)
    finally:
        stop.set()
        await voting
    return answered, keda_offset


def settle(servers: ReleaseServers, base: str, answered: list[str]) -> list[str]:
    """Until every answered vote is recorded; a few more votes every 3 s, so KEDA starts Jobs
    that claim what a Job on the killed master left pending. Returns those votes' IDs."""
    more: list[str] = []
    deadline = time.monotonic() + WAIT_S
    while missing := asyncio.run(unrecorded(servers.pg_url("app"), answered + more)):
        assert time.monotonic() < deadline, f"{len(missing)} answered votes never recorded"
        more += asyncio.run(post_votes(base, 5))
        time.sleep(3)
    return more
