"""Pod IPs: the agent skips a loopback address some other process already holds (a leftover
server of an earlier run on 127.0.1.1:8000 made the pod fail with EADDRINUSE)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

from processor.nodeagent.pods import AddressPool, listening_addresses

FIRST = "127.0.1.240"


@pytest.fixture
def held() -> Iterator[str]:
    """A listening socket on FIRST, as a leftover process would hold it."""
    server = socket.create_server((FIRST, 0))
    try:
        yield FIRST
    finally:
        server.close()


def test_listening_addresses_sees_a_listening_socket(held: str) -> None:
    assert held in listening_addresses()


def test_the_pool_skips_an_address_another_process_listens_on(held: str) -> None:
    pool = AddressPool(first=ipaddress.IPv4Address(FIRST), size=5)
    assert pool.take() == "127.0.1.241"


def test_the_pool_hands_out_a_free_address_in_order() -> None:
    pool = AddressPool(first=ipaddress.IPv4Address("127.0.1.245"), size=3)
    assert [pool.take(), pool.take()] == ["127.0.1.245", "127.0.1.246"]
    pool.give_back("127.0.1.245")
    assert pool.take() == "127.0.1.245"
