"""ACK_DURABILITY=fsync: ingest starts only on a Redis that fsyncs every write before it
replies, and refuses votes (503) while that stops being true."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ingest.durability import Durability, DurabilityError
from tests.support.ingest_app import make_settings, running_app, state_of, wait_until
from tests.support.ingest_process import start_ingest
from tests.support.redispair import FSYNC_ALWAYS, running, throwaway
from tests.support.servers import free_port
from votecontract.names import ENV_ACK_DURABILITY, ENV_PORT, ENV_REDIS_URL, StreamNames

FSYNC = Durability.FSYNC


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--appendonly", "no"), "appendonly"),
        (("--appendonly", "yes", "--appendfsync", "everysec"), "appendfsync"),
        ((*FSYNC_ALWAYS, "--no-appendfsync-on-rewrite", "yes"), "no-appendfsync-on-rewrite"),
    ],
)
async def test_fsync_level_refuses_to_start_unless_redis_fsyncs_before_replying(
    tmp_path: Path, stream_names: StreamNames, args: tuple[str, ...], named: str
) -> None:
    server = throwaway(tmp_path, *args)
    with running(server):
        settings = make_settings(server.url, stream_names, ack_durability=FSYNC)
        with pytest.raises(DurabilityError, match=f"ACK_DURABILITY=fsync.*{named}"):
            async with running_app(settings):
                pass


async def test_fsync_level_accepts_votes_and_refuses_them_while_redis_stops_fsyncing(
    tmp_path: Path, stream_names: StreamNames
) -> None:
    server = throwaway(tmp_path, *FSYNC_ALWAYS)
    with running(server):
        settings = make_settings(server.url, stream_names, ack_durability=FSYNC)
        async with (
            aioredis.Redis.from_url(server.url) as admin,
            running_app(settings) as (app, client),
        ):
            accepted = await client.post("/vote", json={"option": "cats"})
            await admin.config_set("appendfsync", "everysec")
            guard = state_of(app).durability
            await wait_until(lambda: not guard.verified)
            refused = await client.post("/vote", json={"option": "cats"})
            not_ready = await client.get("/readyz")
            await admin.config_set("appendfsync", "always")
            await wait_until(lambda: guard.verified)
            again = await client.post("/vote", json={"option": "dogs"})
            stored = await admin.xlen(stream_names.stream)
    assert (accepted.status_code, refused.status_code, again.status_code) == (202, 503, 202)
    assert refused.json()["error"] == "durability_unverified"
    assert refused.headers["retry-after"] == "1"
    assert not_ready.status_code == 503
    assert stored == 2


@pytest.mark.parametrize(
    ("grants", "says"),
    [
        ("+info", "may not run CONFIG GET and INFO shows only that the AOF is on"),
        ("", "neither CONFIG GET nor INFO"),
    ],
)
async def test_an_acl_user_that_cannot_read_the_config_is_refused(
    tmp_path: Path, stream_names: StreamNames, grants: str, says: str
) -> None:
    server = throwaway(tmp_path, *FSYNC_ALWAYS)
    with running(server):
        async with aioredis.Redis.from_url(server.url) as admin:
            rule = f"on >pw +select +xadd +xgroup|create +xinfo|groups +xlen ~* {grants}"
            await admin.execute_command("ACL", "SETUSER", "ingest", *rule.split())
        url = server.url.replace("redis://", "redis://ingest:pw@")
        settings = make_settings(url, stream_names, ack_durability=FSYNC)
        with pytest.raises(DurabilityError, match=says):
            async with running_app(settings):
                pass


async def test_unreachable_redis_at_start_is_no_error_but_votes_wait_for_the_check(
    tmp_path: Path, stream_names: StreamNames
) -> None:
    server = throwaway(tmp_path, *FSYNC_ALWAYS)
    settings = make_settings(server.url, stream_names, ack_durability=FSYNC)
    async with running_app(settings) as (app, client):
        refused = await client.post("/vote", json={"option": "cats"})
        with running(server):
            await wait_until(lambda: state_of(app).durability.verified)
            accepted = await client.post("/vote", json={"option": "cats"})
    assert refused.status_code == 503
    assert accepted.status_code == 202


def test_python_m_ingest_exits_naming_the_variable(tmp_path: Path) -> None:
    server = throwaway(tmp_path, "--appendonly", "no")
    with running(server):
        process = start_ingest(
            {ENV_REDIS_URL: server.url, ENV_ACK_DURABILITY: "fsync", ENV_PORT: str(free_port())}
        )
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode != 0
    assert "ACK_DURABILITY=fsync" in out + err
    assert "appendonly is 'no'" in out + err
