"""The app factory and its service endpoints: probes, metrics, OpenAPI, and fuzzed bodies."""

from __future__ import annotations

import functools
import json

import jsonschema
import pytest
import redis.asyncio as aioredis
from anyio.from_thread import start_blocking_portal
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.app import create_app
from tests.support.ingest_app import make_settings, running_app
from tests.support.servers import free_port
from votecontract.environment import SettingsError
from votecontract.names import ENV_MAX_BACKLOG, ENV_VOTE_STREAM, StreamNames


@pytest.fixture(autouse=True)
def _delete_test_keys(redis_client: aioredis.Redis) -> None:
    """Requesting redis_client deletes the keys the app created under the test's prefix."""


def test_the_factory_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VOTE_STREAM, "from-env")
    assert create_app().state.settings.names.stream == "from-env"
    monkeypatch.setenv(ENV_MAX_BACKLOG, "-1")
    with pytest.raises(SettingsError, match=ENV_MAX_BACKLOG):
        create_app()


async def test_probes_when_redis_is_there(
    redis_url: str, stream_names: StreamNames, redis_client: aioredis.Redis
) -> None:
    async with running_app(make_settings(redis_url, stream_names)) as (_, client):
        alive = await client.get("/healthz")
        await redis_client.delete(stream_names.stream)
        ready = await client.get("/readyz")
    assert alive.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    groups = await redis_client.xinfo_groups(stream_names.stream)
    assert [group["name"] for group in groups] == [stream_names.group]


async def test_readyz_is_503_until_redis_answers(stream_names: StreamNames) -> None:
    settings = make_settings(f"redis://127.0.0.1:{free_port()}/0", stream_names)
    async with running_app(settings) as (_, client):
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "1"
    assert ready.json()["status"] == ready.json()["error"] == "not_ready"


async def test_metrics_count_votes_batches_latency_and_backlog(
    redis_url: str, stream_names: StreamNames
) -> None:
    async with running_app(make_settings(redis_url, stream_names)) as (_, client):
        for option in ("cats", "dogs", "birds"):
            await client.post("/vote", json={"option": option})
        await client.get("/readyz")
        response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in response.text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples["votes_accepted_total"] == 2
    assert samples['votes_rejected_total{reason="invalid_option"}'] == 1
    assert samples["vote_write_batch_size_sum"] == 2
    assert samples["vote_request_seconds_count"] == 3
    assert samples["vote_backlog"] == 2


async def test_each_app_has_its_own_metrics(redis_url: str, stream_names: StreamNames) -> None:
    first = create_app(make_settings(redis_url, stream_names))
    second = create_app(make_settings(redis_url, stream_names))
    assert first.state.metrics.registry is not second.state.metrics.registry


async def test_openapi_describes_what_the_service_checks(
    redis_url: str, stream_names: StreamNames
) -> None:
    settings = make_settings(redis_url, stream_names, options=("tea", "coffee"))
    async with running_app(settings) as (_, client):
        spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    vote = spec["paths"]["/vote"]["post"]
    assert set(vote["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert {"202", "400", "413", "415", "422", "503"} <= set(vote["responses"])
    schema = {**spec["components"]["schemas"]["Vote"], "components": spec["components"]}
    jsonschema.validate({"option": "tea", "voter_id": "abc-1"}, schema)
    for invalid in ({"option": "cats"}, {"voter_id": "v"}, {"option": "tea", "voter_id": "a b"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(invalid, schema)
    assert {"/vote", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.sampled_from(["option", "voter_id", "x"]), json_values).map(
        lambda value: json.dumps(value).encode()
    ),
)
content_types = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "", "a/b; c=d"]
)


def test_no_request_body_produces_a_server_error(redis_url: str, stream_names: StreamNames) -> None:
    # One app for all examples, on an event loop of its own (as Starlette's TestClient does).
    app_running = running_app(make_settings(redis_url, stream_names))
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app_running) as (
            _,
            client,
        ),
    ):

        @settings(max_examples=100, deadline=None)
        @given(body=bodies, content_type=content_types, cookie=st.binary(max_size=30))
        def post_anything(body: bytes, content_type: str, cookie: bytes) -> None:
            headers = {"content-type": content_type.encode(), "cookie": b"voter_id=" + cookie}
            post = functools.partial(client.post, "/vote", content=body, headers=headers)
            response = portal.call(post)
            assert response.status_code in {202, 400, 413, 415, 422}
            assert response.headers["content-type"] == "application/json"
            assert response.status_code == 202 or "error" in response.json()

        post_anything()
