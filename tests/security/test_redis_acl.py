"""Each component under its own ACL user (helm/files/redis-users.acl): its work succeeds, and
another role's commands and keys are refused with NOPERM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError

from ingest.durability import Durability
from processor.summary import Outcome
from tests.support.aclpipeline import client_of, run_pipeline
from tests.support.ingest_app import make_settings, running_app
from tests.support.redisacl import ADMIN, AclRedis, acl_server
from tests.support.redispair import FSYNC_ALWAYS, running
from votecontract.names import FIELD_DEAD_REASON, StreamNames

pytestmark = pytest.mark.security


@pytest.fixture
async def admin(acl_redis: AclRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(acl_redis.url(ADMIN), decode_responses=True)
    yield client
    await client.aclose()


async def test_each_role_does_its_work_under_its_own_user(
    acl_redis: AclRedis,
    stream_names: StreamNames,
    database_url: str,
    db: asyncpg.Connection,
    admin: aioredis.Redis,
) -> None:
    vote_id, job = await run_pipeline(acl_redis, stream_names, database_url, admin)

    assert job.summary.outcome is Outcome.DRAINED
    assert (job.summary.recorded, job.summary.dead_lettered) == (1, 1)
    ms, seq = map(int, vote_id.split("-"))
    assert (
        await db.fetchval(
            "SELECT voter_id FROM vote_events WHERE (entry_ms, entry_seq) = ($1, $2)", ms, seq
        )
        == "ann"
    )
    dead = await admin.xrange(stream_names.dead_letter)
    assert [entry[FIELD_DEAD_REASON].split(";")[0] for _, entry in dead] == [
        "unknown option 'fish'"
    ]
    # The trim and the consumer cleanup scripts ran under the processor's user too.
    assert await admin.xlen(stream_names.stream) == 0
    assert await admin.xinfo_consumers(stream_names.stream, stream_names.group) == []
    # Nothing was refused on the way (redis-py's CLIENT SETINFO, refused on Redis >= 7.2 and
    # unknown before, is optional: redis-py ignores its failure).
    denied = [e for e in await admin.acl_log() if e["object"] != "client|setinfo"]
    assert denied == [], denied


@pytest.mark.parametrize("level", [Durability.FSYNC, Durability.REPLICA])
async def test_ingest_verifies_fsync_and_waits_for_replicas_under_its_own_user(
    tmp_path: Path, stream_names: StreamNames, level: Durability
) -> None:
    acl_redis = acl_server(tmp_path, stream_names)
    acl_redis.server.extra_args += FSYNC_ALWAYS
    # No replica here: WAIT answers 0 at its timeout, and the vote is a 503 (not a NOPERM).
    settings = make_settings(acl_redis.url("ingest"), stream_names, ack_durability=level)
    with running(acl_redis.server):
        async with running_app(settings) as (_, client):
            response = await client.post("/vote", json={"option": "cats"})
        admin_url = acl_redis.url(ADMIN)
        async with aioredis.Redis.from_url(admin_url, decode_responses=True) as admin:
            denied = [e for e in await admin.acl_log() if e["object"] != "client|setinfo"]
    assert response.status_code == (202 if level is Durability.FSYNC else 503)
    assert denied == [], denied


Call = Callable[[aioredis.Redis, StreamNames], Awaitable[Any]]
REFUSED: dict[str, dict[str, Call]] = {
    "ingest": {
        "XTRIM": lambda r, n: r.xtrim(n.stream, maxlen=0),
        "FLUSHALL": lambda r, n: r.flushall(),
        "CONFIG SET": lambda r, n: r.config_set("appendfsync", "no"),
        "XREAD the stream": lambda r, n: r.xread({n.stream: "0"}),
        "read the dead letters": lambda r, n: r.xrange(n.dead_letter),
        "XADD a dead letter": lambda r, n: r.xadd(n.dead_letter, {"a": "1"}),
        "XREADGROUP": lambda r, n: r.xreadgroup(n.group, "c", {n.stream: ">"}),
        "XGROUP DESTROY": lambda r, n: r.xgroup_destroy(n.stream, n.group),
        "DEL": lambda r, n: r.delete(n.stream),
        "KEYS": lambda r, n: r.keys("*"),
        "another key": lambda r, n: r.xadd("other", {"a": "1"}),
        # The pipeline metrics read the pending summary; nothing that changes the group.
        "XACK": lambda r, n: r.xack(n.stream, n.group, "1-1"),
        "XCLAIM": lambda r, n: r.xclaim(n.stream, n.group, "c", 0, ["1-1"]),
        "XAUTOCLAIM": lambda r, n: r.xautoclaim(n.stream, n.group, "c", 0),
        "XGROUP SETID": lambda r, n: r.xgroup_setid(n.stream, n.group, "$"),
        "XGROUP DELCONSUMER": lambda r, n: r.xgroup_delconsumer(n.stream, n.group, "c"),
        "XPENDING the dead letters": lambda r, n: r.xpending(n.dead_letter, n.group),
    },
    "processor": {
        "FLUSHALL": lambda r, n: r.flushall(),
        "XADD a vote": lambda r, n: r.xadd(n.stream, {"a": "1"}),
        "read the dead letters": lambda r, n: r.xrange(n.dead_letter),
        "XDEL": lambda r, n: r.xdel(n.stream, "1-1"),
        "XGROUP SETID": lambda r, n: r.xgroup_setid(n.stream, n.group, "$"),
        "EVAL": lambda r, n: r.eval("return 1", 0),
        "CONFIG SET": lambda r, n: r.config_set("appendonly", "no"),
        "DEL": lambda r, n: r.delete(n.stream),
        "another key": lambda r, n: r.xlen("other"),
    },
    "keda": {
        "XADD": lambda r, n: r.xadd(n.stream, {"a": "1"}),
        "XGROUP CREATE": lambda r, n: r.xgroup_create(n.stream, "g2", id="0"),
        "read the stream": lambda r, n: r.xrange(n.stream),
        "XREADGROUP": lambda r, n: r.xreadgroup(n.group, "c", {n.stream: ">"}),
        "XTRIM": lambda r, n: r.xtrim(n.stream, maxlen=0),
        "read the dead letters": lambda r, n: r.xlen(n.dead_letter),
        "CONFIG GET": lambda r, n: r.config_get("requirepass"),
        "ACL LIST": lambda r, n: r.acl_list(),
    },
}
CASES = [(role, what) for role, calls in REFUSED.items() for what in calls]


@pytest.mark.parametrize(("role", "what"), CASES, ids=[f"{r}-{w}" for r, w in CASES])
async def test_a_role_is_refused_what_it_does_not_need(
    acl_redis: AclRedis, stream_names: StreamNames, admin: aioredis.Redis, role: str, what: str
) -> None:
    await admin.xgroup_create(stream_names.stream, stream_names.group, id="0", mkstream=True)
    await admin.xadd(stream_names.dead_letter, {"a": "1"})
    client = client_of(acl_redis, role)
    try:
        with pytest.raises(NoPermissionError):
            await REFUSED[role][what](client, stream_names)
    finally:
        await client.aclose()
    assert await admin.xlen(stream_names.stream) == 0
    assert await admin.xlen(stream_names.dead_letter) == 1
