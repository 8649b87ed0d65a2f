"""A node crash: Redis's data directory on tests/support/lossyfs.py, a FUSE file system that
loses whatever was written but not fsynced when the plug is pulled (its process SIGKILLed).

Under ACK_DURABILITY=fsync (appendfsync always) no vote answered 202 is lost. Under
`appendfsync everysec` (ACK_DURABILITY=memory) the votes written since the last fsync are,
and the test measures how many. What the simulation leaves out: docs/guarantees.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ingest.durability import Durability
from tests.support.ingest_app import make_settings, running_app
from tests.support.lossymount import LossyMount, fuse_unavailable
from tests.support.redispair import (
    FSYNC_ALWAYS,
    FSYNC_EVERYSEC,
    pause,
    resume,
    throwaway,
    wait_loaded,
)
from tests.support.servers import ThrowawayRedis
from tests.support.voteload import VoteLoad
from votecontract.names import StreamNames

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(fuse_unavailable() is not None, reason=str(fuse_unavailable())),
]
logger = logging.getLogger(__name__)

TRIALS = 3
# Enough writes since the last fsync that one of them was answered for sure: the newest may
# not have had its replies sent yet, and one may be the group's re-creation after a restart.
AT_STAKE = 3


def unsynced_writes(mount: LossyMount) -> int:
    files = (mount.mountpoint / "appendonlydir").iterdir()
    return sum(mount.unsynced_writes(path) for path in files)


async def crash_trial(
    mount: LossyMount, server: ThrowawayRedis, load: VoteLoad, stream: str, at_stake: int
) -> int:
    """Pull the plug under load once there are `at_stake` unsynced writes; the votes lost."""
    async with load.running():
        for _ in range(50):
            await load.until_accepted(100)
            pause(server)  # a frozen instant: nothing more is written, synced or answered
            if unsynced_writes(mount) >= at_stake:
                break
            resume(server)
        else:
            pytest.fail(f"never {at_stake} unsynced writes at once")
        server.kill()
        mount.crash()
    mount.mount()
    server.start()
    await wait_loaded(server.url)
    async with aioredis.Redis.from_url(server.url, decode_responses=True) as redis:
        stored = {entry_id for entry_id, _ in await redis.xrange(stream)}
    return sum(1 for entry_id in load.accepted if entry_id not in stored)


@pytest.mark.parametrize(
    ("level", "aof", "at_stake"),
    [(Durability.FSYNC, FSYNC_ALWAYS, 0), (Durability.MEMORY, FSYNC_EVERYSEC, AT_STAKE)],
    ids=["fsync-always", "memory-everysec"],
)
async def test_a_node_crash_loses_only_what_was_not_fsynced(
    tmp_path: Path,
    stream_names: StreamNames,
    level: Durability,
    aof: tuple[str, ...],
    at_stake: int,
) -> None:
    mount = LossyMount(tmp_path / "disk", tmp_path / "mnt")
    mount.mount()
    server = throwaway(mount.mountpoint, *aof)
    settings = make_settings(server.url, stream_names, ack_durability=level)
    losses = []
    try:
        server.start()
        async with running_app(settings) as (_, client):
            load = VoteLoad(client)
            for _ in range(TRIALS):
                # Lost votes leave the ledger: each trial counts its own.
                losses.append(await crash_trial(mount, server, load, stream_names.stream, at_stake))
                async with aioredis.Redis.from_url(server.url, decode_responses=True) as redis:
                    kept = {entry_id for entry_id, _ in await redis.xrange(stream_names.stream)}
                load.accepted = [entry_id for entry_id in load.accepted if entry_id in kept]
    finally:
        server.kill()
        mount.crash()
    logger.warning("node crash trials", extra={"level": str(level), "lost": losses})
    print(f"{level}: acknowledged votes lost per node crash: {losses}")
    if level is Durability.FSYNC:
        assert losses == [0] * TRIALS
    else:
        assert all(lost > 0 for lost in losses), losses
