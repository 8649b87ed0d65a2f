"""A Sentinel failover in the middle of a load of votes through ingest: at
ACK_DURABILITY=replica (202 only once a replica holds the vote) none acknowledged is lost; at
the default `memory` (Redis's XADD reply), the loss is measured (printed, and given in
docs/redis-topologies.md), never asserted away."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ingest.durability import Durability
from tests.support.failoverload import http_writer, load_through, stored_on_master
from tests.support.ingest_app import running_app
from tests.support.redissentinel import LocalSentinel
from tests.support.topologies import ingest_settings
from votecontract.names import StreamNames
from votecontract.topology import RedisTopology

pytestmark = [pytest.mark.redis_sentinel, pytest.mark.slow, pytest.mark.timeout(240)]

WAYS = ["sentinel-failover", "kill-master"]


def failover_of(setup: LocalSentinel, how: str) -> Callable[[], object]:
    def failover() -> None:
        if how == "kill-master":
            # The killed master comes back as the new master's replica (WAIT 1 needs one).
            killed, _ = setup.kill_master()
            setup.restart(killed)
        else:
            setup.failover()
            setup.wait_settled(setup.master_port())

    return failover


def sentinel_topology(setup: LocalSentinel) -> RedisTopology:
    return RedisTopology(
        mode="sentinel",
        sentinels=tuple(("127.0.0.1", s.port) for s in setup.sentinels),
        sentinel_master="votes-master",
    )


async def load_through_failover(
    setup: LocalSentinel, how: str, durability: Durability
) -> tuple[list[str], list[str], int]:
    """(acknowledged, lost, answered 503) of a load through ingest across a failover."""
    names = StreamNames("votes", "processors")
    settings = ingest_settings(
        setup.url, names, sentinel_topology(setup), max_backlog=10**9, ack_durability=durability
    )
    async with running_app(settings) as (_, client):
        tally = await load_through(failover_of(setup, how), http_writer(client))
    stored = stored_on_master(setup, names.stream)
    lost = [entry_id for entry_id in tally.acknowledged if entry_id not in stored]
    return tally.acknowledged, lost, tally.refused


@pytest.mark.parametrize("how", WAYS)
async def test_no_vote_acknowledged_at_ack_durability_replica_is_lost_in_a_failover(
    fresh_sentinel: LocalSentinel, how: str
) -> None:
    acknowledged, lost, refused = await load_through_failover(
        fresh_sentinel, how, Durability.REPLICA
    )
    print(f"\n{how} at replica: {len(acknowledged)} acknowledged, {len(lost)} lost, {refused} 503")
    assert lost == []


@pytest.mark.security
async def test_no_vote_acknowledged_at_ack_durability_replica_is_lost_in_a_failover_over_tls(
    fresh_tls_sentinel: LocalSentinel,
) -> None:
    """The same over TLS-only servers: replication, the sentinels' links and every client."""
    how = "sentinel-failover"
    acknowledged, lost, refused = await load_through_failover(
        fresh_tls_sentinel, how, Durability.REPLICA
    )
    print(f"\n{how} over TLS: {len(acknowledged)} acknowledged, {len(lost)} lost, {refused} 503")
    assert lost == []


@pytest.mark.parametrize("how", WAYS)
async def test_votes_acknowledged_at_ack_durability_memory_lost_in_a_failover_are_measured(
    fresh_sentinel: LocalSentinel, how: str
) -> None:
    acknowledged, lost, refused = await load_through_failover(
        fresh_sentinel, how, Durability.MEMORY
    )
    print(f"\n{how} at memory: {len(acknowledged)} acknowledged, {len(lost)} lost, {refused} 503")
    # The pipeline goes on after the failover: votes were accepted on the new master too.
    assert len(acknowledged) > len(lost)
