"""Security headers on every response: the page, static files, the JSON API and errors."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis

from ingest.app import create_app
from ingest.headers import CONTENT_SECURITY_POLICY
from tests.support.ingest_app import make_settings
from votecontract.names import StreamNames

pytestmark = pytest.mark.security


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/static/vote.js"), ("GET", "/healthz"), ("GET", "/nope"),
     ("POST", "/vote"), ("GET", "/openapi.json")],
)  # fmt: skip
async def test_each_response_carries_the_security_headers(
    redis_url: str,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
    pg_database_url: str,
    method: str,
    path: str,
) -> None:
    app = create_app(make_settings(redis_url, stream_names, database_url=pg_database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            response = await client.request(method, path)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers


async def test_https_adds_hsts_and_a_secure_voter_cookie(
    redis_url: str, redis_client: aioredis.Redis, stream_names: StreamNames, pg_database_url: str
) -> None:
    app = create_app(make_settings(redis_url, stream_names, database_url=pg_database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://ingest") as client:
            response = await client.post("/vote", json={"option": "cats"})
    assert response.status_code == 202
    assert response.headers["strict-transport-security"].startswith("max-age=")
    cookie = response.headers["set-cookie"].lower()
    assert "; secure" in cookie
    assert "httponly" in cookie


def test_the_page_has_no_inline_script_or_style() -> None:
    from pathlib import Path

    import ingest

    page = (Path(ingest.readside.__file__).parent / "templates" / "index.html").read_text()
    assert "<script>" not in page
    assert "<style" not in page
    assert " style=" not in page
    assert " on" + "click=" not in page
