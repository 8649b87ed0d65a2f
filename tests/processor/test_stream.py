"""VoteStream's Redis client: commands packed in C, byte for byte what redis-py would send."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

from processor.stream import with_hiredis_packing

ACK = ("XACK", "votes", "processors", b"1764528000000-0", b"1764528000000-1")
ARGS: list[tuple[object, ...]] = [
    ACK,
    ("XADD", "votes:dead", "MAXLEN", "~", 100_000, "*", b"option", b"\xff", "voter_id", "\u00e9"),
    ("XREADGROUP", "GROUP", "processors", "job-1", "COUNT", 5000, "STREAMS", "votes", ">"),
    ("CONFIG GET", "maxmemory"),
]


def test_packed_commands_are_the_bytes_redis_py_sends() -> None:
    plain = Connection()
    packed = with_hiredis_packing(aioredis.Redis()).connection_pool.make_connection()
    for args in ARGS:
        assert b"".join(packed.pack_command(*args)) == b"".join(plain.pack_command(*args))
    assert b"".join(packed.pack_commands([ACK, ACK])) == b"".join(plain.pack_commands([ACK, ACK]))


def test_every_connection_kind_keeps_its_transport() -> None:
    for url, kind in [
        ("redis://127.0.0.1:6379", Connection),
        ("rediss://127.0.0.1:6379", SSLConnection),
        ("unix:///run/redis.sock", UnixDomainSocketConnection),
    ]:
        pool = with_hiredis_packing(aioredis.Redis.from_url(url)).connection_pool
        assert issubclass(pool.connection_class, kind)


async def test_a_packed_client_talks_to_the_real_server(redis_url: str, key_prefix: str) -> None:
    client = with_hiredis_packing(aioredis.Redis.from_url(redis_url))
    key = f"{key_prefix}packed"
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"option": "cats", "voter_id": b"\xff", "accepted_ms": 17})
            pipe.xlen(key)
            entry_id, length = await pipe.execute()
        assert length == 1
        assert await client.xrange(key) == [
            (entry_id, {b"option": b"cats", b"voter_id": b"\xff", b"accepted_ms": b"17"})
        ]
        assert "maxmemory" in await client.execute_command("CONFIG GET", "maxmemory")
    finally:
        await client.delete(key)
        await client.aclose()
