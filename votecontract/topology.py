"""Where the vote streams live: the Redis topology and the layout of sharded streams.

The rules every process keeps alike (ingest writes, Jobs drain, the read side and
reconciliation look up, keda/ and helm/ render the same names):

- `REDIS_MODE`: `standalone` (default; `REDIS_URL` names the server), `cluster` (`REDIS_URL`
  names any node) or `sentinel` (`REDIS_SENTINELS=host:port,...` and `REDIS_SENTINEL_MASTER`;
  `REDIS_URL` then gives only credentials, TLS and database, its host is not used).
- `VOTE_SHARDS=N` (default 1): with 1, the stream is `VOTE_STREAM` as given (in cluster mode
  wrapped in a hash tag, `{votes}`, so that it and `{votes}:dead` share a slot); with N > 1,
  shard i is `{<VOTE_STREAM>:<i>}`, each on a slot of its own, its dead letters beside it.
- A voter's votes all go to shard `crc32(voter_id) % N`, so last-cast-wins by stream ID stays a
  comparison within one stream.
- With N > 1 the millisecond part of every entry ID of shard i is congruent to i modulo N
  (ingest's XADD script chooses it), so IDs are unique over all shards, as the schema's primary
  key (entry_ms, entry_seq) needs, and the shard of a vote ID is `ms % N`.
- `<VOTE_STREAM>:shards` holds the N the streams were written with: ingest refuses another N
  while a shard of the old layout still holds votes not yet recorded.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from votecontract.environment import Environ, SettingsError, env_int
from votecontract.names import (
    ENV_REDIS_MODE,
    ENV_REDIS_SENTINEL_MASTER,
    ENV_REDIS_SENTINEL_PASSWORD,
    ENV_REDIS_SENTINEL_USERNAME,
    ENV_REDIS_SENTINELS,
    ENV_REDIS_URL,
    ENV_VOTE_SHARD,
    ENV_VOTE_SHARDS,
    StreamNames,
)

Mode = Literal["standalone", "cluster", "sentinel"]
MODES: tuple[Mode, ...] = ("standalone", "cluster", "sentinel")
DEFAULT_SENTINEL_PORT = 26379
# Redis Cluster has 16384 slots; more shards than that could not each have a slot of its own.
MAX_SHARDS = 1024
LAYOUT_SUFFIX = ":shards"

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class RedisTopology:
    """How to reach Redis and how many streams the votes are spread over."""

    mode: Mode = "standalone"
    sentinels: tuple[Address, ...] = ()
    sentinel_master: str = ""
    sentinel_username: str | None = None
    # Left out of repr(): settings objects end up in tracebacks and debug output.
    sentinel_password: str | None = field(default=None, repr=False)
    shards: int = 1

    @classmethod
    def from_env(cls, env: Environ) -> RedisTopology:
        """Read REDIS_MODE, the sentinel variables and VOTE_SHARDS; SettingsError names the
        variable that is wrong."""
        mode = _mode(env)
        topology = cls(mode=mode, shards=shard_count(env))
        if mode != "sentinel":
            return topology
        master = env.get(ENV_REDIS_SENTINEL_MASTER, "").strip()
        if not master:
            raise SettingsError(f"{ENV_REDIS_SENTINEL_MASTER} must be set when REDIS_MODE=sentinel")
        return cls(
            mode=mode,
            sentinels=parse_sentinels(env.get(ENV_REDIS_SENTINELS, "")),
            sentinel_master=master,
            sentinel_username=env.get(ENV_REDIS_SENTINEL_USERNAME, "").strip() or None,
            sentinel_password=env.get(ENV_REDIS_SENTINEL_PASSWORD) or None,
            shards=topology.shards,
        )

    def streams(self, base: StreamNames) -> tuple[StreamNames, ...]:
        """The names of every shard, shard i at index i."""
        if self.shards == 1:
            if self.mode == "cluster" and not has_hash_tag(base.stream):
                return (StreamNames("{" + base.stream + "}", base.group),)
            return (base,)
        plain = untagged(base.stream)
        return tuple(StreamNames(f"{{{plain}:{i}}}", base.group) for i in range(self.shards))

    def shard_of_voter(self, voter_id: str) -> int:
        return voter_shard(voter_id, self.shards)

    def shard_of_entry(self, entry_ms: int) -> int:
        """The shard an entry ID `<entry_ms>-<seq>` was written to (see the module's rules)."""
        return entry_ms % self.shards


def check_url(topology: RedisTopology, url: str) -> None:
    """A REDIS_URL the mode can use: TCP for cluster and sentinel, database 0 on a cluster."""
    parts = urlsplit(url)
    if topology.mode != "standalone" and parts.scheme == "unix":
        raise SettingsError(
            f"{ENV_REDIS_URL} must be redis:// or rediss:// when REDIS_MODE={topology.mode}"
        )
    if topology.mode == "cluster" and parts.path.strip("/") not in ("", "0"):
        raise SettingsError(f"{ENV_REDIS_URL} must name database 0 when REDIS_MODE=cluster")


def voter_shard(voter_id: str, shards: int) -> int:
    """Stable across processes and releases (unlike `hash()`, which is salted per process)."""
    return zlib.crc32(voter_id.encode()) % shards


def has_hash_tag(key: str) -> bool:
    """Redis Cluster hashes only the part between the first `{` and the next `}`, if not empty."""
    start = key.find("{")
    if start < 0:
        return False
    end = key.find("}", start + 1)
    return end > start + 1


def untagged(name: str) -> str:
    return name.replace("{", "").replace("}", "")


def layout_key(base: StreamNames) -> str:
    """The key that records the VOTE_SHARDS the streams of `base` were written with."""
    return untagged(base.stream) + LAYOUT_SUFFIX


def shard_count(env: Environ) -> int:
    shards = env_int(env, ENV_VOTE_SHARDS, 1, minimum=1)
    if shards > MAX_SHARDS:
        raise SettingsError(f"{ENV_VOTE_SHARDS} must be <= {MAX_SHARDS}, got {shards}")
    return shards


def shard_index(env: Environ, shards: int) -> int:
    """VOTE_SHARD: the shard one Job drains (default 0), below VOTE_SHARDS."""
    index = env_int(env, ENV_VOTE_SHARD, 0)
    if index >= shards:
        raise SettingsError(f"{ENV_VOTE_SHARD} must be < {ENV_VOTE_SHARDS} ({shards}), got {index}")
    return index


def parse_sentinels(raw: str) -> tuple[Address, ...]:
    """`host:port,host:port` (`[v6]:port`; port 26379 when left out)."""
    if not raw.strip():
        raise SettingsError(
            f"{ENV_REDIS_SENTINELS} must list host:port,... when REDIS_MODE=sentinel"
        )
    return tuple(_address(item.strip()) for item in raw.split(","))


def _address(item: str) -> Address:
    host, port = item, str(DEFAULT_SENTINEL_PORT)
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        if rest:
            port = rest.removeprefix(":")
    elif ":" in item:
        host, _, port = item.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{ENV_REDIS_SENTINELS}: {item!r} is not host:port")
    return host, int(port)


def _mode(env: Environ) -> Mode:
    value = env.get(ENV_REDIS_MODE, "").strip().lower() or "standalone"
    for mode in MODES:
        if value == mode:
            return mode
    raise SettingsError(f"{ENV_REDIS_MODE} must be one of {', '.join(MODES)}, got {value!r}")
