"""Small service checks for scripts/dev.sh: `python scripts/devservices.py COMMAND ARG`.

Exit status 0 = yes/done, 1 = no (not reachable, port busy), 2 = a server answered but refused
(bad password, missing role): starting another one would not help, so dev.sh stops there.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from votecontract.environment import redact_url

WAIT_S = 15.0


def url_part(url: str, part: str) -> str:
    parts = urlsplit(url)
    if part == "port":
        default = 6379 if parts.scheme.startswith("redis") else 5432
        return str(parts.port or default)
    if part == "redacted":
        return redact_url(url)
    if part.startswith("with-port="):
        host, port = parts.hostname or "127.0.0.1", part.split("=", 1)[1]
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@{host}:{port}" if auth else f"{host}:{port}"
        return urlunsplit(parts._replace(netloc=netloc))
    raise SystemExit(f"unknown part {part}")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_ping(url: str) -> int:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping()
    except RedisConnectionError:
        return 1
    except RedisError as error:
        print(f"dev: Redis at {redact_url(url)} refused: {error}", file=sys.stderr)
        return 2
    return 0


def admin_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/") or "postgres"


async def pg_connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(admin_url(url)[0], timeout=2)


def pg_ping(url: str) -> int:
    async def ping() -> int:
        try:
            conn = await pg_connect(url)
        except (TimeoutError, OSError):
            return 1
        except asyncpg.PostgresError as error:
            print(f"dev: PostgreSQL at {redact_url(url)} refused: {error}", file=sys.stderr)
            return 2
        await conn.close()
        return 0

    return asyncio.run(ping())


def create_database(url: str) -> int:
    async def create() -> None:
        name = admin_url(url)[1]
        conn = await pg_connect(url)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                quoted = '"' + name.replace('"', '""') + '"'
                await conn.execute(f"CREATE DATABASE {quoted}")
                print(f"dev: created database {name}", file=sys.stderr)
        finally:
            await conn.close()

    asyncio.run(create())
    return 0


def wait_until(check: str, url: str) -> int:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check == "redis" and redis_ping(url) == 0:
            return 0
        if check == "http" and http_ok(url):
            return 0
        time.sleep(0.1)
    return 1


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("args", nargs="*")
    args = parser.parse_args()
    command, rest = args.command, args.args
    if command == "url-part":
        print(url_part(rest[0], rest[1]))
        return 0
    if command == "port-free":
        return 0 if port_free(int(rest[0])) else 1
    if command == "free-port":
        print(free_port())
        return 0
    handlers = {
        "redis-ping": redis_ping,
        "pg-ping": pg_ping,
        "create-database": create_database,
        "wait-redis": lambda url: wait_until("redis", url),
        "wait-http": lambda url: wait_until("http", url),
    }
    return handlers[command](rest[0])


if __name__ == "__main__":
    sys.exit(main())
