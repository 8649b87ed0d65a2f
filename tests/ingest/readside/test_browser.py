"""The voting page in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven
by selenium through /usr/bin/chromedriver: nothing is downloaded at run time), against the
real ingest app on a live port and a real processor Job."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from ingest.app import create_app
from ingest.settings import IngestSettings
from tests.support.paths import ROOT
from tests.support.readside import live_server, record_vote
from votecontract.names import (
    ENV_CONSUMER_NAME,
    ENV_DATABASE_URL,
    ENV_LOG_FORMAT,
    ENV_REDIS_URL,
    ENV_VOTE_GROUP,
    ENV_VOTE_OPTIONS,
    ENV_VOTE_STREAM,
)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
OUTPUT = ROOT / "test-output" / "browser"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,900",
    # No bar animation: screenshots show the final widths, not a frame of the transition.
    "--force-prefers-reduced-motion",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    yield from _chromium(tmp_path, javascript=True)


@pytest.fixture
def browser_without_js(tmp_path: Path) -> Iterator[WebDriver]:
    yield from _chromium(tmp_path, javascript=False)


def _chromium(tmp_path: Path, *, javascript: bool) -> Iterator[WebDriver]:
    for binary in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} missing: run scripts/install-chromium.sh (Debian packages)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _process_once(settings: IngestSettings) -> None:
    """One processor Job, as KEDA would start it: `python -m processor`, drain and exit."""
    env = {
        **os.environ,
        ENV_REDIS_URL: settings.redis_url,
        ENV_DATABASE_URL: settings.database_url,
        ENV_VOTE_STREAM: settings.names.stream,
        ENV_VOTE_GROUP: settings.names.group,
        ENV_VOTE_OPTIONS: ",".join(settings.options),
        ENV_CONSUMER_NAME: "browser-test",
        ENV_LOG_FORMAT: "text",
    }
    job = subprocess.run(
        [sys.executable, "-m", "processor"], env=env, capture_output=True, timeout=60, check=False
    )
    assert job.returncode == 0, job.stderr.decode()


def _wait(driver: WebDriver, condition: Any, what: str) -> None:
    # The page may be navigating (303) or re-rendering rows: retry on elements gone stale.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    wait = WebDriverWait(driver, 60, poll_frequency=0.1, ignored_exceptions=ignored)
    wait.until(condition, message=what)


def _your_vote(driver: WebDriver) -> tuple[str, str]:
    element = driver.find_element(By.ID, "your-vote")
    return str(element.get_attribute("data-state")), element.text


def _text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def _bars(driver: WebDriver) -> dict[str, tuple[str, str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    return {
        str(row.get_attribute("data-option")): (
            row.find_element(By.CSS_SELECTOR, ".votes").text,
            str(row.find_element(By.TAG_NAME, "progress").get_attribute("value")),
        )
        for row in rows
    }


def _screenshot(driver: WebDriver, name: str, capsys: pytest.CaptureFixture[str]) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / name
    driver.save_screenshot(str(path))
    with capsys.disabled():
        print(f"\nbrowser screenshot: {path}")
    return path


async def test_vote_goes_from_pending_to_recorded_and_the_bars_move(
    browser: WebDriver,
    read_settings: IngestSettings,
    pg: asyncpg.Connection,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await record_vote(pg, "1-0", "dogs", "someone-else")
    with live_server(create_app(read_settings)) as server:
        browser.get(server.url + "/")
        _wait(browser, lambda d: _bars(d)["dogs"] == ("1", "1"), "initial results")
        assert _your_vote(browser) == ("none", "You have not voted yet.")

        browser.find_element(By.CSS_SELECTOR, "button[value='cats']").click()
        _wait(browser, lambda d: _your_vote(d)[0] == "pending", "vote shown as pending")
        assert _your_vote(browser)[1] == (
            "Your vote for cats is pending: accepted, waiting to be counted."
        )
        _wait(browser, lambda d: _text(d, "backlog") == "1", "backlog counts the vote")
        _screenshot(browser, "voting-page-pending.png", capsys)

        _process_once(read_settings)
        _wait(browser, lambda d: _your_vote(d)[0] == "recorded", "vote shown as recorded")
        assert _your_vote(browser)[1] == "Your vote for cats is recorded."
        _wait(browser, lambda d: _bars(d)["cats"] == ("1", "0.5"), "bars follow the stream")
        assert _bars(browser)["dogs"] == ("1", "0.5")
        _wait(browser, lambda d: _text(d, "backlog") == "0", "backlog drained")
        _screenshot(browser, "voting-page.png", capsys)

        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        browser.quit()  # close the results stream before the server stops
    assert severe == []


@pytest.mark.usefixtures("pg")
async def test_keyboard_alone_can_vote(browser: WebDriver, read_settings: IngestSettings) -> None:
    with live_server(create_app(read_settings)) as server:
        browser.get(server.url + "/")
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        focused = browser.switch_to.active_element
        assert focused.get_attribute("value") == "cats"
        focused.send_keys(Keys.TAB)
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        _wait(browser, lambda d: _your_vote(d)[0] == "pending", "vote by keyboard")
        assert "for dogs" in _your_vote(browser)[1]
        browser.quit()


@pytest.mark.usefixtures("pg")
async def test_voting_works_without_javascript(
    browser_without_js: WebDriver, read_settings: IngestSettings
) -> None:
    with live_server(create_app(read_settings)) as server:
        browser_without_js.get(server.url + "/")
        browser_without_js.find_element(By.CSS_SELECTOR, "button[value='dogs']").click()
        _wait(browser_without_js, lambda d: _your_vote(d)[0] == "pending", "303 back to /")
        assert browser_without_js.current_url == server.url + "/"
        assert "Your vote for dogs is pending" in _your_vote(browser_without_js)[1]
