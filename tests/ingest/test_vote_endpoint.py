"""POST /vote end to end on the real Redis: every status code and what lands in the stream."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from tests.support.ingest_app import make_settings, running_app, state_of, wait_until
from tests.support.proxy import TcpProxy
from tests.support.servers import ThrowawayRedis, free_port
from votecontract.names import StreamNames


@pytest.fixture(autouse=True)
def _delete_test_keys(redis_client: aioredis.Redis) -> None:
    """Requesting redis_client deletes the keys the app created under the test's prefix."""


async def test_a_json_vote_is_accepted_into_the_stream(
    redis_url: str, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    async with running_app(make_settings(redis_url, stream_names)) as (_, client):
        before_ms = time.time_ns() // 1_000_000
        response = await client.post("/vote", json={"option": "cats", "voter_id": "alice"})
    assert response.status_code == 202
    entry_id = response.json()["id"]
    assert response.json() == {"id": entry_id, "status_url": f"/votes/{entry_id}"}
    assert response.headers["location"] == f"/votes/{entry_id}"
    assert "set-cookie" not in response.headers
    [(stored_id, fields)] = await redis_client.xrange(stream_names.stream)
    assert stored_id == entry_id
    assert fields["option"] == "cats"
    assert fields["voter_id"] == "alice"
    assert before_ms <= int(fields["accepted_ms"]) <= time.time_ns() // 1_000_000


async def test_a_form_vote_without_voter_gets_a_cookie_that_identifies_it_next_time(
    redis_url: str, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    async with running_app(make_settings(redis_url, stream_names)) as (_, client):
        first = await client.post("/vote", data={"option": "dogs"})
        second = await client.post("/vote", data={"option": "cats"})
    assert (first.status_code, second.status_code) == (202, 202)
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "set-cookie" not in second.headers
    voters = [fields["voter_id"] for _, fields in await redis_client.xrange(stream_names.stream)]
    assert voters[0] == voters[1] == first.cookies["voter_id"]


async def test_the_body_voter_wins_over_the_cookie_and_a_bad_cookie_is_replaced(
    redis_url: str, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    async with running_app(make_settings(redis_url, stream_names)) as (_, client):
        client.cookies.set("voter_id", "from-cookie")
        by_body = await client.post("/vote", json={"option": "cats", "voter_id": "from-body"})
        by_cookie = await client.post("/vote", json={"option": "cats"})
        client.cookies.set("voter_id", "not a valid id!")
        replaced = await client.post("/vote", json={"option": "cats"})
    assert [r.status_code for r in (by_body, by_cookie, replaced)] == [202, 202, 202]
    voters = [fields["voter_id"] for _, fields in await redis_client.xrange(stream_names.stream)]
    assert voters[:2] == ["from-body", "from-cookie"]
    assert voters[2] == replaced.cookies["voter_id"] != "from-cookie"


async def test_refusals_have_their_status_and_a_json_body_naming_the_problem(
    redis_url: str, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    as_json = {"content-type": "application/json"}
    as_text = {"content-type": "text/plain"}
    cases: list[tuple[dict[str, object], int, str]] = [
        ({"json": {"option": "birds"}}, 422, "invalid_option"),
        ({"json": {"option": "cats", "voter_id": "x" * 65}}, 422, "invalid_voter_id"),
        ({"content": b"{not json", "headers": as_json}, 400, "malformed_json"),
        ({"json": {"voter_id": "v"}}, 400, "missing_field"),
        ({"content": b"option=cats", "headers": as_text}, 415, "unsupported_media_type"),
        ({"json": {"option": "cats", "pad": "x" * 5000}}, 413, "body_too_large"),
    ]
    async with running_app(make_settings(redis_url, stream_names)) as (app, client):
        for request, status, reason in cases:
            response = await client.post("/vote", **request)  # type: ignore[arg-type]
            assert response.status_code == status, request
            assert response.json()["error"] == reason
            assert response.json()["detail"]
        wrong_method = await client.get("/vote")
        metrics = (await client.get("/metrics")).text
    assert response.headers["connection"] == "close"
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"] == "method_not_allowed"
    assert 'votes_rejected_total{reason="invalid_option"} 1.0' in metrics
    assert 'votes_rejected_total{reason="method_not_allowed"} 1.0' in metrics
    assert await redis_client.exists(stream_names.stream)
    assert await redis_client.xlen(stream_names.stream) == 0
    assert state_of(app).metrics.registry.get_sample_value("votes_accepted_total") == 0


async def test_an_unknown_option_lists_the_allowed_ones(
    redis_url: str, stream_names: StreamNames
) -> None:
    settings = make_settings(redis_url, stream_names, options=("tea", "coffee"))
    async with running_app(settings) as (_, client):
        response = await client.post("/vote", json={"option": "cats"})
    assert response.status_code == 422
    assert response.json()["allowed"] == ["tea", "coffee"]


async def test_an_oversized_streamed_body_is_refused_without_reading_the_rest(
    redis_url: str, stream_names: StreamNames
) -> None:
    sent = 0

    async def endless_body() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent < 1000:
            sent += 1
            yield b'{"option": "cats", "pad": "' + b"x" * 1024

    async with running_app(make_settings(redis_url, stream_names)) as (_, client):
        response = await client.post(
            "/vote", content=endless_body(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["limit"] == 4096
    assert sent <= 5


async def test_hundreds_of_concurrent_votes_each_land_once_as_answered(
    redis_url: str, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    ballots = {f"voter-{i}": random.choice(["cats", "dogs"]) for i in range(600)}
    # In-process, 600 httpx clients keep the event loop busy far longer than a server would.
    settings = make_settings(redis_url, stream_names, redis_timeout_s=60.0)
    async with running_app(settings) as (app, client):
        responses = await asyncio.gather(
            *(
                client.post("/vote", json={"option": option, "voter_id": voter})
                for voter, option in ballots.items()
            )
        )
        batches = state_of(app).metrics.registry.get_sample_value("vote_write_batch_size_count")
    assert {response.status_code for response in responses} == {202}
    answered = {
        response.json()["id"]: voter for response, voter in zip(responses, ballots, strict=True)
    }
    stored = dict(await redis_client.xrange(stream_names.stream))
    assert stored.keys() == answered.keys()
    for entry_id, voter in answered.items():
        assert stored[entry_id]["voter_id"] == voter
        assert stored[entry_id]["option"] == ballots[voter]
    assert batches is not None
    assert batches < len(ballots)


async def test_backlog_over_the_limit_sheds_votes_until_it_drains(
    redis_url: str, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    settings = make_settings(redis_url, stream_names, max_backlog=3, retry_after_s=7)
    async with running_app(settings) as (app, client):
        for _ in range(4):
            assert (await client.post("/vote", json={"option": "cats"})).status_code == 202
        backlog = state_of(app).backlog
        await wait_until(lambda: backlog.over_limit)
        shed = await client.post("/vote", json={"option": "cats"})
        await redis_client.xreadgroup(stream_names.group, "c1", {stream_names.stream: ">"})
        await wait_until(lambda: not backlog.over_limit)
        after = await client.post("/vote", json={"option": "dogs"})
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "7"
    assert shed.json()["error"] == "backlog_full"
    assert after.status_code == 202
    assert await redis_client.xlen(stream_names.stream) == 5


@pytest.mark.timeout(30)  # a refused connection that waited for the 60 s timeout fails here
async def test_no_redis_at_all_is_a_quick_503_with_retry_after(stream_names: StreamNames) -> None:
    no_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(no_redis, stream_names, redis_timeout_s=60.0)
    async with running_app(settings) as (_, client):
        response = await client.post("/vote", json={"option": "cats"})
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "redis_unavailable"
    assert alive.status_code == 200
    assert ready.status_code == 503


async def test_redis_stopping_and_coming_back(
    throwaway_redis: ThrowawayRedis, stream_names: StreamNames
) -> None:
    async with running_app(make_settings(throwaway_redis.url, stream_names)) as (_, client):
        before = await client.post("/vote", json={"option": "cats"})
        throwaway_redis.stop()
        during = await client.post("/vote", json={"option": "cats"})
        not_ready = await client.get("/readyz")
        throwaway_redis.start()
        after = await client.post("/vote", json={"option": "dogs"})
        ready = await client.get("/readyz")
    assert [before.status_code, during.status_code, after.status_code] == [202, 503, 202]
    assert during.headers["retry-after"] == "1"
    assert (not_ready.status_code, ready.status_code) == (503, 200)


@pytest.mark.timeout(60)  # paused for 10 minutes: only the write timeout ends the wait
async def test_a_stalled_redis_is_a_503_within_the_timeout(
    throwaway_redis: ThrowawayRedis, stream_names: StreamNames
) -> None:
    settings = make_settings(throwaway_redis.url, stream_names, redis_timeout_s=0.3)
    admin = aioredis.Redis.from_url(throwaway_redis.url)
    try:
        async with running_app(settings) as (_, client):
            assert (await client.post("/vote", json={"option": "cats"})).status_code == 202
            await admin.execute_command("CLIENT", "PAUSE", "600000", "WRITE")
            stalled = await client.post("/vote", json={"option": "cats"})
            await admin.execute_command("CLIENT", "UNPAUSE")
            recovered = await client.post("/vote", json={"option": "cats"})
    finally:
        await admin.aclose()
    assert stalled.status_code == 503
    assert stalled.headers["retry-after"] == "1"
    assert recovered.status_code == 202


async def test_a_client_gets_a_json_404_for_unknown_paths(
    redis_url: str, stream_names: StreamNames
) -> None:
    async with running_app(make_settings(redis_url, stream_names)) as (_, client):
        response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_the_voter_cookie_is_secure_over_https(
    redis_url: str, stream_names: StreamNames
) -> None:
    async with running_app(make_settings(redis_url, stream_names)) as (app, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://ingest") as client:
            response = await client.post("/vote", json={"option": "cats"})
    assert response.status_code == 202
    assert "Secure" in response.headers["set-cookie"]


async def test_a_voter_identity_survives_a_503_for_a_write_redis_applied(
    redis_url: str, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    """The reply to an XADD Redis applied is lost: 503. The retry must be the same voter,
    or the processor counts the two entries as two voters."""
    proxy = TcpProxy(int(redis_url.split(":")[2].split("/")[0]))
    await proxy.start()
    settings = make_settings(
        redis_url.replace(f":{proxy.target_port}/", f":{proxy.port}/"), stream_names
    )
    try:
        async with running_app(settings) as (_, client):
            proxy.swallow_replies = True
            unconfirmed = await client.post("/vote", json={"option": "cats"})
            proxy.swallow_replies = False
            retried = await client.post("/vote", json={"option": "cats"})
    finally:
        await proxy.cut()
    assert unconfirmed.status_code == 503
    assert retried.status_code == 202
    voters = [fields["voter_id"] for _, fields in await redis_client.xrange(stream_names.stream)]
    assert len(voters) == 2  # the unconfirmed write was applied
    assert voters[0] == voters[1]
    assert voters[0] == unconfirmed.cookies["voter_id"]
    assert "HttpOnly" in unconfirmed.headers["set-cookie"]
