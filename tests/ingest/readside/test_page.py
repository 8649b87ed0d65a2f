from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

import ingest.readside.page
from ingest.cookies import COOKIE_LAST_VOTE
from ingest.readside.page import describe_vote
from ingest.readside.status import VoteStatus
from ingest.settings import IngestSettings
from tests.support.readside import OPTIONS, read_client, record_vote
from tests.support.servers import free_port
from votecontract.names import FIELD_ACCEPTED_MS, FIELD_OPTION, StreamNames


class Elements(HTMLParser):
    """Start tags with their attributes, in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


@pytest.mark.usefixtures("pg")
async def test_page_has_a_labelled_submit_button_per_option(read_http: httpx.AsyncClient) -> None:
    response = await read_http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = Elements(response.text)
    (form,) = page.all("form")
    assert (form["method"], form["action"]) == ("post", "vote")
    buttons = page.all("button")
    assert [(b["type"], b["name"], b["value"]) for b in buttons] == [
        ("submit", "option", option) for option in OPTIONS
    ]
    for option in OPTIONS:
        assert f">Vote for {option}</button>" in response.text
    assert page.all("html")[0]["lang"] == "en"
    assert page.all("legend")


@pytest.mark.usefixtures("pg")
async def test_page_has_no_inline_script_or_style(read_http: httpx.AsyncClient) -> None:
    html = (await read_http.get("/")).text
    page = Elements(html)
    assert [s["src"] for s in page.all("script")] == ["static/vote.js"]
    assert re.search(r"<script[^>]*>\s*(?!</script>)\S", html) is None
    assert all("style" not in attrs for _, attrs in page.tags)
    assert not page.all("style")
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)


async def test_page_shows_results_as_bars(
    read_http: httpx.AsyncClient, pg: asyncpg.Connection
) -> None:
    await record_vote(pg, "1-0", "cats", "a")
    await record_vote(pg, "2-0", "cats", "b")
    await record_vote(pg, "3-0", "dogs", "c")
    page = Elements((await read_http.get("/")).text)
    bars = page.all("progress")
    assert [(b["value"], b["aria-label"]) for b in bars] == [
        ("0.6667", "Share of cats"),
        ("0.3333", "Share of dogs"),
    ]


@pytest.mark.usefixtures("pg")
async def test_page_follows_the_last_vote_cookie_from_pending_to_recorded(
    read_settings: IngestSettings,
    pg: asyncpg.Connection,
    redis_client: aioredis.Redis,
    stream_names: StreamNames,
) -> None:
    entry_id = await redis_client.xadd(
        stream_names.stream, {FIELD_OPTION: "dogs", FIELD_ACCEPTED_MS: "1700000000000"}
    )
    async with read_client(read_settings) as http:
        http.cookies.set(COOKIE_LAST_VOTE, entry_id)
        pending = await http.get("/")
        await record_vote(pg, entry_id, "dogs", "v1")
        recorded = await http.get("/")
    assert "Your vote for dogs is pending" in pending.text
    assert '<noscript><meta http-equiv="refresh"' in pending.text
    assert f'data-last-vote="{entry_id}"' in pending.text
    assert "Your vote for dogs is recorded." in recorded.text
    assert "http-equiv" not in recorded.text


@pytest.mark.usefixtures("pg")
async def test_page_ignores_a_bad_last_vote_cookie(read_settings: IngestSettings) -> None:
    async with read_client(read_settings) as http:
        http.cookies.set(COOKIE_LAST_VOTE, "<script>")
        response = await http.get("/")
    assert response.status_code == 200
    assert "You have not voted yet." in response.text
    assert "<script>" not in response.text


async def test_page_without_postgres_still_offers_the_vote(read_settings: IngestSettings) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    async with read_client(dataclasses.replace(read_settings, database_url=dead)) as http:
        response = await http.get("/")
    assert response.status_code == 200
    assert "Results are temporarily unavailable." in response.text
    assert len(Elements(response.text).all("button")) == len(OPTIONS)


@pytest.mark.usefixtures("pg")
@pytest.mark.parametrize(
    ("path", "media_type"),
    [("/static/vote.js", "text/javascript"), ("/static/vote.css", "text/css")],
)
async def test_static_assets_are_served(
    read_http: httpx.AsyncClient, path: str, media_type: str
) -> None:
    response = await read_http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)


def test_describe_vote_covers_every_state() -> None:
    assert describe_vote(None) == "You have not voted yet."
    superseded = VoteStatus(id="1-0", state="recorded", option="cats", ballot="superseded")
    assert "replaced by a later vote" in describe_vote(superseded)
    dead = VoteStatus(id="1-0", state="dead_lettered", reason="bad option")
    assert describe_vote(dead) == "Your vote could not be counted: bad option."


@pytest.mark.usefixtures("pg")
async def test_form_post_from_a_browser_is_sent_back_to_the_page(
    read_http: httpx.AsyncClient, redis_client: aioredis.Redis, stream_names: StreamNames
) -> None:
    response = await read_http.post(
        "/vote",
        content=b"option=dogs",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    vote_id = response.cookies[COOKIE_LAST_VOTE]
    assert "voter_id" in response.cookies
    ((entry_id, fields),) = await redis_client.xrange(stream_names.stream)
    assert (entry_id, fields[FIELD_OPTION]) == (vote_id, "dogs")
    page = await read_http.get("/")
    assert "Your vote for dogs is pending" in page.text


@pytest.mark.usefixtures("pg")
async def test_api_clients_still_get_202_json(read_http: httpx.AsyncClient) -> None:
    response = await read_http.post("/vote", json={"option": "cats"})
    assert response.status_code == 202
    assert COOKIE_LAST_VOTE not in response.cookies
    status = await read_http.get(response.json()["status_url"])
    assert status.json()["state"] == "pending"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(one: str, other: str) -> float:
    light, dark = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize(
    ("text", "background"),
    [
        ("ink", "paper"),
        ("muted", "paper"),
        ("pending", "paper"),
        ("ok", "paper"),
        ("bad", "paper"),
        ("paper", "accent"),
        ("paper", "accent-dark"),
    ],
)
def test_text_colours_meet_wcag_aa_contrast(text: str, background: str) -> None:
    css = (Path(ingest.readside.page.__file__).parent / "static" / "vote.css").read_text()
    colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6});", css))
    assert _contrast(colours[text], colours[background]) >= 4.5
