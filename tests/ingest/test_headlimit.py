"""`python -m ingest` refuses oversized request heads (431) and keeps serving."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator

import pytest

from tests.support.ingest_process import start_ingest, wait_ready
from tests.support.servers import ThrowawayRedis, free_port
from votecontract.names import ENV_MAX_HEADER_BYTES, ENV_PORT, ENV_REDIS_URL, ENV_VOTE_STREAM

pytestmark = pytest.mark.security

LIMIT = 4096


@pytest.fixture(scope="module")
def ingest_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    redis = ThrowawayRedis(port=free_port(), workdir=tmp_path_factory.mktemp("redis"))
    redis.start()
    port = free_port()
    env = {ENV_REDIS_URL: redis.url, ENV_PORT: str(port), ENV_VOTE_STREAM: "votes"}
    process = start_ingest({**env, ENV_MAX_HEADER_BYTES: str(LIMIT)})
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        yield port
    finally:
        process.kill()
        process.communicate(timeout=10)
        redis.stop()


def exchange(port: int, *requests: bytes) -> bytes:
    """Send the requests on one connection; read until as many responses came or it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # Refused mid-upload, the answer may still be readable; closed with our bytes unread,
        # the kernel may replace the 431 by a reset.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"".join(requests))
        reply = b""
        with contextlib.suppress(ConnectionResetError):
            while reply.count(b"HTTP/1.1 ") < len(requests) and (chunk := sock.recv(65536)):
                reply += chunk
    return reply


def request(path: str = "/healthz", header_bytes: int = 0, body: bytes = b"") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\n" if body else f"GET {path} HTTP/1.1\r\nHost: t\r\n"
    if header_bytes:
        head += f"X-Padding: {'a' * header_bytes}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


@pytest.mark.parametrize("size", [LIMIT + 1, 100_000, 4_000_000])
def test_a_head_over_the_limit_gets_431_with_a_json_error(ingest_port: int, size: int) -> None:
    reply = exchange(ingest_port, request(header_bytes=size))
    head, _, body = reply.partition(b"\r\n\r\n")
    if reply or size < 1_000_000:
        assert head.startswith(b"HTTP/1.1 431 "), reply[:200]
        assert json.loads(body)["error"] == "headers_too_large"
    assert exchange(ingest_port, request()).startswith(b"HTTP/1.1 200 ")  # still serving


def test_heads_under_the_limit_and_bodies_on_a_kept_alive_connection_pass(ingest_port: int) -> None:
    vote = json.dumps({"option": "cats", "voter_id": "ann"}).encode()
    # Bodies do not count toward the head limit: eight votes of ~3 KiB heads, pipelined.
    requests = [request("/vote", header_bytes=3000, body=vote) for _ in range(8)]
    reply = exchange(ingest_port, *requests, request())
    assert reply.count(b"HTTP/1.1 202 ") == 8, reply[:500]
    assert reply.count(b"HTTP/1.1 200 ") == 1


def test_a_large_head_pipelined_behind_a_body_is_refused_before_it_is_served(
    ingest_port: int,
) -> None:
    # Both requests arrive in one read: the second head comes after the first request's body,
    # so only its exact size, taken when the head is complete, can refuse it. (Refusing closes
    # the connection, so the vote's own answer may be cut off: no 2xx, no promise.)
    vote = json.dumps({"option": "cats", "voter_id": "ann"}).encode()
    reply = exchange(ingest_port, request("/vote", body=vote), request(header_bytes=LIMIT + 100))
    assert b"HTTP/1.1 431 " in reply, reply[:500]
    assert b"HTTP/1.1 200 " not in reply, reply[:500]  # GET /healthz was never served
