"""A redis-server process SIGKILLed under load, restarted from its AOF, five times over:
every vote answered 202 is in the stream (docs/guarantees.md).

Under `appendfsync always` (ACK_DURABILITY=fsync) Redis writes and fdatasyncs the AOF before
it sends any reply of an event-loop turn. (Under `everysec` a process crash usually loses
nothing too, but not always: while a background fsync is still running Redis postpones the
AOF write for up to 2 s and replies all the same, so that is no guarantee and not tested as
one.) A node crash is another matter: tests/ingest/test_node_crash.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ingest.durability import Durability
from tests.support.ingest_app import make_settings, running_app
from tests.support.redispair import FSYNC_ALWAYS, running, throwaway, wait_loaded
from tests.support.voteload import VoteLoad
from votecontract.names import StreamNames

pytestmark = pytest.mark.slow

TRIALS = 5
VOTES_BEFORE_KILL = 300


async def test_every_202_survives_redis_being_sigkilled_under_load(
    tmp_path: Path, stream_names: StreamNames
) -> None:
    server = throwaway(tmp_path, *FSYNC_ALWAYS)
    settings = make_settings(server.url, stream_names, ack_durability=Durability.FSYNC)
    with running(server):
        async with running_app(settings) as (_, client):
            load = VoteLoad(client)
            for _ in range(TRIALS):
                async with load.running():
                    await load.until_accepted(VOTES_BEFORE_KILL)
                    server.kill()  # mid-load: batches are on the wire right now
                server.start()  # loads the AOF
                await wait_loaded(server.url)
                async with aioredis.Redis.from_url(server.url, decode_responses=True) as redis:
                    stored = {entry_id for entry_id, _ in await redis.xrange(stream_names.stream)}
                lost = [entry_id for entry_id in load.accepted if entry_id not in stored]
                assert lost == [], f"{len(lost)} of {len(load.accepted)} acknowledged votes lost"
    assert len(load.accepted) >= TRIALS * VOTES_BEFORE_KILL
    assert len(set(load.accepted)) == len(load.accepted)
