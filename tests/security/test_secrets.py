"""Passwords in REDIS_URL and DATABASE_URL never show: not in any log line, error message,
HTTP response or /metrics, of ingest, a processor Job, a migration or the local runner, on
the happy path and with wrong passwords or unreachable servers."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis

from tests.support.paths import ROOT
from tests.support.redisacl import ADMIN, AclRedis, acl_server
from tests.support.servers import free_port
from votecontract.names import (
    ENV_DATABASE_URL,
    ENV_LOG_FORMAT,
    ENV_MAX_RUNTIME_S,
    ENV_MIGRATE_WAIT_S,
    ENV_PORT,
    ENV_REDIS_TIMEOUT_S,
    ENV_REDIS_URL,
    ENV_RETRY_BACKOFF_MS,
    StreamNames,
)

pytestmark = pytest.mark.security

PG_PASSWORD = f"pg-pw-{secrets.token_hex(12)}"
WRONG_PASSWORD = f"wrong-pw-{secrets.token_hex(12)}"


@pytest.fixture
def votes_redis(tmp_path: Path) -> Iterator[AclRedis]:
    """The ACL'd server with the default names (the runner reads keda/scaledjob.yaml)."""
    redis = acl_server(tmp_path, StreamNames())
    redis.server.start()
    try:
        yield redis
    finally:
        redis.server.stop()


def with_password(database_url: str, password: str) -> str:
    # The local server trusts loopback connections, so any password is accepted.
    return database_url.replace("postgres@", f"postgres:{quote(password, safe='')}@", 1)


def assert_no_secret(texts: list[str], passwords: list[str]) -> None:
    assert texts
    for password in passwords:
        for form in {password, quote(password, safe="")}:
            leaks = [text for text in texts if form in text]
            assert not leaks, f"a password shows in: {leaks[0][:2000]}"


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run(
        [sys.executable, *args], env={**os.environ, ENV_LOG_FORMAT: "json", **env},
        capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT,
    )  # fmt: skip
    return done.stdout + done.stderr + f"exit {done.returncode}"


def http_transcript(base: str) -> list[str]:
    """Bodies and headers of the endpoints, for good and bad requests."""
    requests = [
        ("GET", "/healthz", None), ("GET", "/readyz", None), ("GET", "/metrics", None),
        ("GET", "/openapi.json", None), ("GET", "/nope", None), ("DELETE", "/vote", None),
        ("POST", "/vote", {"option": "cats", "voter_id": "ann"}),
        ("POST", "/vote", {"option": "fish"}), ("GET", "/metrics", None),
    ]  # fmt: skip
    texts = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for method, path, body in requests:
            response = client.request(method, path, json=body)
            texts.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        response = client.post("/vote", content=b"\xff{", headers={"content-type": "text/json"})
        texts.append(response.text)
    return texts


def serve_ingest(redis_url: str) -> list[str]:
    """Run `python -m ingest`, make the requests, stop it; its output and the transcript."""
    port = free_port()
    # A long timeout: a loaded machine must not turn the good run's vote into a 503.
    env = {ENV_REDIS_URL: redis_url, ENV_PORT: str(port), ENV_REDIS_TIMEOUT_S: "10"}
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest"], env={**os.environ, ENV_LOG_FORMAT: "json", **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base + "/healthz"), "ingest answers /healthz")
        texts = http_transcript(base)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    return [*texts, out, err]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(condition: Callable[[], bool], what: str, within_s: float = 60) -> None:
    """Poll a process's or a server's state; the bound is generous, not a timing."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        time.sleep(0.05)


def test_ingest_shows_no_password(votes_redis: AclRedis) -> None:
    unreachable = f"redis://ingest:{votes_redis.passwords['ingest']}@127.0.0.1:{free_port()}/0"
    texts = [
        *serve_ingest(votes_redis.url("ingest")),
        *serve_ingest(votes_redis.url("ingest", WRONG_PASSWORD)),
        *serve_ingest(unreachable),
        run(["-m", "ingest"], {ENV_REDIS_URL: f"http://ingest:{WRONG_PASSWORD}@host/0"}),
        run(["-m", "ingest"], {ENV_REDIS_URL: f"redis://ingest:{WRONG_PASSWORD}@host:x/0"}),
    ]
    assert any('"status_url"' in text for text in texts)  # the good run accepted the vote
    assert "Traceback" not in "".join(texts)
    assert_no_secret(texts, [*votes_redis.passwords.values(), WRONG_PASSWORD])


def test_processor_and_migrations_show_no_password(
    votes_redis: AclRedis, database_url: str
) -> None:
    good_db = with_password(database_url, PG_PASSWORD)
    no_db = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{free_port()}/votes"
    bad_port = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:x/votes"
    redis_url = votes_redis.url("processor")
    quick = {ENV_MAX_RUNTIME_S: "1", ENV_RETRY_BACKOFF_MS: "50"}
    job = ["-m", "processor"]
    texts = [
        run([*job, "migrate"], {ENV_DATABASE_URL: good_db}),
        # migrate waits for a database that is not up yet: a short budget, retries logged too.
        run([*job, "migrate"], {ENV_DATABASE_URL: no_db, ENV_MIGRATE_WAIT_S: "0.3", **quick}),
        run([*job, "migrate"], {ENV_DATABASE_URL: bad_port}),
        run(job, {ENV_REDIS_URL: redis_url, ENV_DATABASE_URL: good_db, **quick}),
        run(job, {ENV_REDIS_URL: votes_redis.url("processor", WRONG_PASSWORD), **quick}),
        run(job, {ENV_REDIS_URL: redis_url, ENV_DATABASE_URL: no_db, **quick}),
        run(job, {ENV_REDIS_URL: redis_url, ENV_DATABASE_URL: bad_port, **quick}),
        run(job, {ENV_REDIS_URL: redis_url, ENV_DATABASE_URL: f"mysql://u:{PG_PASSWORD}@h/d"}),
    ]
    assert '"job finished"' in texts[3]
    assert "Traceback" not in "".join(texts)
    assert "DATABASE_URL has an invalid port" in texts[2]
    assert_no_secret(texts, [*votes_redis.passwords.values(), PG_PASSWORD, WRONG_PASSWORD])


def test_the_local_runner_shows_no_password(
    votes_redis: AclRedis, database_url: str, tmp_path: Path
) -> None:
    env = {
        ENV_REDIS_URL: votes_redis.url("processor"),
        ENV_DATABASE_URL: with_password(database_url, PG_PASSWORD),
        ENV_LOG_FORMAT: "json",
    }
    workdir = tmp_path / "jobs"
    args = ["-m", "processor.scaledjob", "keda/scaledjob.yaml", "--polling-interval", "0.2"]
    args += ["--redis-url", votes_redis.url("keda"), "--workdir", str(workdir)]
    admin = redis.Redis.from_url(votes_redis.url(ADMIN))
    admin.xadd("votes", {"option": "cats", "voter_id": "ann", "accepted_ms": "1"})
    texts = []
    for redis_args in ([], ["--redis-url", votes_redis.url("keda", WRONG_PASSWORD)]):
        process = subprocess.Popen(
            [sys.executable, *args, *redis_args], env={**os.environ, **env},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert process.stdout is not None
        first_poll = process.stdout.readline()  # the runner has polled (and printed) once
        # Drained with the right password: the Job recorded the vote (and logs its summary
        # before it exits; the runner waits for its Jobs on SIGTERM).
        wait_until(lambda: admin.xlen("votes") == 0, "the vote processed")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        texts += [first_poll + out, err]
    texts += [path.read_text() for path in workdir.rglob("*") if path.is_file()]
    admin.close()
    assert "metric=1" in texts[0]
    assert '"recorded": 1' in texts[1]
    assert_no_secret(texts, [*votes_redis.passwords.values(), PG_PASSWORD, WRONG_PASSWORD])
