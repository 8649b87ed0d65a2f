"""Ingest behind an Ingress: only the public routes are routed to it, the proxy's idle
connections never meet a closed socket, and requests that came in over HTTPS are seen as such
(rendered by helm 3 and helm 4; the scheme checked on a real `python -m ingest`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from ingest.app import create_app
from ingest.settings import IngestSettings
from tests.support.helmchart import HELM_VERSIONS, Manifest, find, render
from tests.support.ingest_process import start_ingest, wait_ready
from tests.support.servers import ThrowawayRedis, free_port
from votecontract.names import ENV_ACK_DURABILITY, ENV_HOST, ENV_PORT, ENV_REDIS_URL

pytestmark = pytest.mark.helm

INGRESS = ("--set", "ingress.enabled=true")
# Routes a voter's browser uses; everything else (probes, metrics, the API description) is
# for the cluster only.
PUBLIC = {"/", "/vote", "/votes/{vote_id}", "/results", "/results/stream", "/static"}
# Idle timeouts of the usual proxies in front of ingest: ingress-nginx's upstream keep-alive
# and AWS ALB's idle timeout are 60 s.
PROXY_KEEP_ALIVE_S = 60


def example_path(route: Route | Mount) -> str:
    """A request path the route serves."""
    if isinstance(route, Mount):
        return route.path + "/vote.css"
    return route.path.replace("{vote_id}", "1700000000000-0")


def routed(ingress: Manifest, path: str) -> bool:
    """Kubernetes' Ingress matching: Exact, or Prefix element by element."""
    elements = [part for part in path.split("/") if part]
    for rule in ingress["spec"]["rules"]:
        for item in rule["http"]["paths"]:
            prefix = [part for part in item["path"].split("/") if part]
            if item["pathType"] == "Exact" and path == item["path"]:
                return True
            if item["pathType"] == "Prefix" and elements[: len(prefix)] == prefix:
                return True
    return False


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_only_the_public_routes_go_through_the_ingress(version: str) -> None:
    ingress = find(render(version, *INGRESS), "Ingress")
    routes = [r for r in create_app(IngestSettings()).routes if isinstance(r, Route | Mount)]
    assert {route.path for route in routes} >= PUBLIC
    exposed = {route.path for route in routes if routed(ingress, example_path(route))}
    assert exposed == PUBLIC


def config(manifests: list[Manifest]) -> dict[str, Any]:
    data: dict[str, Any] = find(manifests, "ConfigMap", "vote-pipeline")["data"]
    return data


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_ingest_keeps_idle_connections_longer_than_the_proxy(version: str) -> None:
    """Otherwise ingest may close a connection the proxy is sending a POST on: a 502 that
    proxies do not retry (a POST is not idempotent)."""
    assert int(config(render(version, *INGRESS))["KEEP_ALIVE_S"]) > PROXY_KEEP_ALIVE_S
    assert int(config(render(version))["KEEP_ALIVE_S"]) > PROXY_KEEP_ALIVE_S


@pytest.fixture
def ingest_as_rendered(throwaway_redis: ThrowawayRedis) -> Iterator[str]:
    """`python -m ingest` with the ConfigMap of an Ingress install, on loopback."""
    port = free_port()
    env = {**config(render(HELM_VERSIONS[0], *INGRESS)), ENV_HOST: "127.0.0.1"}
    env |= {ENV_PORT: str(port), ENV_REDIS_URL: throwaway_redis.url}
    # The release asks for fsync durability, which this throwaway Redis (no AOF) cannot give;
    # what is checked here is the scheme, not durability.
    env |= {ENV_ACK_DURABILITY: "memory"}
    process = start_ingest(env)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, process)
        yield base_url
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_requests_through_a_tls_terminating_ingress_are_https(ingest_as_rendered: str) -> None:
    # The ingress controller is another pod: its address is not the pod's own loopback.
    proxy = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=proxy, timeout=10) as client:
        response = client.get(
            ingest_as_rendered + "/healthz", headers={"X-Forwarded-Proto": "https"}
        )
    # Strict-Transport-Security is sent over HTTPS only, as the voter cookie's Secure flag.
    assert response.status_code == 200
    assert "strict-transport-security" in response.headers


def test_without_an_ingress_forwarded_headers_are_not_trusted() -> None:
    assert "FORWARDED_ALLOW_IPS" not in config(render(HELM_VERSIONS[0]))
