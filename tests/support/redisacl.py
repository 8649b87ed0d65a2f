"""The shipped ACL file (helm/files/redis-users.acl), rendered the way the chart renders it,
and a redis-server of a test's own that loads it."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis

from tests.support.certs import TlsFiles
from tests.support.paths import ROOT
from tests.support.servers import ThrowawayRedis, free_port
from votecontract.names import StreamNames
from votecontract.topology import layout_key, untagged

ACL_TEMPLATE = ROOT / "helm" / "files" / "redis-users.acl"
ROLES = ("ingest", "processor", "keda")
# What each role needs on top of its own commands on a Redis Cluster: the slot map, and the
# command table, which redis-py (ingest, processor) and go-redis v9.19 (KEDA: osscluster.go
# cmdsInfo, asked again before every command while refused) both read
# (docs/redis-topologies.md#cluster).
CLUSTER_EXTRA = ("+cluster|slots", "+command")
ADMIN = "admin"
_GLOB = re.compile(r"[*?\[\]\\\s]")


def new_passwords() -> dict[str, str]:
    return {role: f"pw-{role}-{secrets.token_hex(12)}" for role in (*ROLES, ADMIN)}


def render_acl(names: StreamNames, passwords: dict[str, str], shards: int = 1) -> str:
    """The role lines for `names`, passwords as SHA-256 hashes (as the chart renders them);
    with shards > 1 the key patterns cover every shard's stream (`{<stream>:[0-9]*}`)."""
    for name in (names.stream, names.dead_letter):
        assert not _GLOB.search(name), f"{name!r} would be a glob pattern in the ACL"
    stream = names.stream if shards == 1 else "{" + untagged(names.stream) + ":[0-9]*}"
    text = ACL_TEMPLATE.read_text()
    values = {
        "STREAM": stream,
        "DEAD_LETTER_STREAM": stream + ":dead",
        "LAYOUT_KEY": layout_key(names),
        **{
            f"{role.upper()}_PASSWORD_SHA256": hashlib.sha256(passwords[role].encode()).hexdigest()
            for role in ROLES
        },
    }
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    assert "${" not in text, text
    return text


def refused(clients: Iterable[redis.Redis], ignore: str = "") -> list[dict[str, object]]:
    """What ACL LOG holds on these servers (each client closed afterwards), but for redis-py's
    CLIENT SETINFO, which it lets fail, and refusals of the key `ignore`."""
    denied = []
    for client in clients:
        with client:
            for entry in client.execute_command("ACL", "LOG"):
                if "client|setinfo" not in str(entry) and entry["object"] != ignore:
                    denied.append(entry)
    return denied


def setuser_args(line: str) -> list[str]:
    """An ACL file line as ACL SETUSER arguments (a selector `(...)` is one argument)."""
    words, selector = [], []
    for word in line.split()[1:]:
        if selector or word.startswith("("):
            selector.append(word)
            if word.endswith(")"):
                words.append(" ".join(selector))
                selector = []
        else:
            words.append(word)
    return words


def role_lines(names: StreamNames, shards: int, passwords: dict[str, str]) -> dict[str, list[str]]:
    """The shipped lines for `names`' stream, or for every shard's (a glob) when shards > 1."""
    text = render_acl(names, passwords, shards)
    lines = [setuser_args(line) for line in text.splitlines() if line.startswith("user ")]
    return {args[0]: args for args in lines}


@dataclass
class AclRedis:
    """A redis-server with the shipped ACL, the default user off and an admin for the test."""

    server: ThrowawayRedis
    passwords: dict[str, str] = field(default_factory=new_passwords)
    scheme: str = "redis"
    query: str = ""

    def url(self, role: str, password: str | None = None) -> str:
        secret = quote(self.passwords[role] if password is None else password, safe="")
        host = f"{role}:{secret}@127.0.0.1:{self.server.port}"
        return f"{self.scheme}://{host}/0{self.query}"


def acl_server(workdir: Path, names: StreamNames, tls: TlsFiles | None = None) -> AclRedis:
    """Not started yet; with `tls` it listens only for TLS (clients must present a cert)."""
    passwords = new_passwords()
    admin_hash = hashlib.sha256(passwords[ADMIN].encode()).hexdigest()
    acl = workdir / "users.acl"
    acl.write_text(
        "user default off\n"
        f"user {ADMIN} on #{admin_hash} ~* &* +@all\n" + render_acl(names, passwords)
    )
    port = free_port()
    args: tuple[str, ...] = ("--aclfile", str(acl))
    if tls is None:
        return AclRedis(ThrowawayRedis(port, workdir, args), passwords)
    args += ("--port", "0", "--tls-port", str(port), *tls.server_args())
    return AclRedis(ThrowawayRedis(port, workdir, args), passwords, "rediss", tls.url_query())
