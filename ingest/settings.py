"""Settings of the ingest service, read once from the environment at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingest.durability import Durability
from votecontract.environment import (
    Environ,
    SettingsError,
    env_float,
    env_int,
    env_str,
    process_environ,
)
from votecontract.names import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    DEFAULT_VOTE_OPTIONS,
    ENV_ACK_DURABILITY,
    ENV_ACK_REPLICA_TIMEOUT_S,
    ENV_ACK_REPLICAS,
    ENV_BACKLOG_REFRESH_S,
    ENV_DATABASE_POOL_SIZE,
    ENV_DATABASE_TIMEOUT_S,
    ENV_HOST,
    ENV_KEEP_ALIVE_S,
    ENV_LIMIT_CONCURRENCY,
    ENV_MAX_BACKLOG,
    ENV_MAX_BODY_BYTES,
    ENV_MAX_HEADER_BYTES,
    ENV_PIPELINE_METRICS_MAX_AGE_S,
    ENV_PIPELINE_METRICS_TIMEOUT_S,
    ENV_PORT,
    ENV_REDIS_TIMEOUT_S,
    ENV_RESULTS_MAX_AGE_S,
    ENV_RETRY_AFTER_S,
    StreamNames,
)
from votecontract.shared_env import (
    database_url,
    log_format,
    redis_topology,
    redis_url,
    stream_names,
    vote_options,
)
from votecontract.topology import RedisTopology


@dataclass(frozen=True)
class IngestSettings:
    """Everything the ingest service is configured with; docs/configuration.md has the variables."""

    # Credentials live in the URLs: out of repr(), so a logged settings object never shows them.
    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)
    options: tuple[str, ...] = DEFAULT_VOTE_OPTIONS
    names: StreamNames = field(default_factory=StreamNames)
    # REDIS_MODE and VOTE_SHARDS (docs/redis-topologies.md); `names` is the base of the
    # shards' names, `topology.streams(names)` the streams themselves.
    topology: RedisTopology = field(default_factory=RedisTopology)
    # Over all shards together.
    max_backlog: int = 100_000
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 4096
    redis_timeout_s: float = 1.0
    backlog_refresh_s: float = 1.0
    retry_after_s: int = 1
    log_format: str = "json"
    # When a vote is answered 202 (ingest/durability.py). `memory` by default for development;
    # the chart sets `fsync`. WAIT gives up after ack_replica_timeout_s, before the request's
    # own bound (redis_timeout_s) would.
    ack_durability: Durability = Durability.MEMORY
    ack_replicas: int = 1
    ack_replica_timeout_s: float = 0.5
    # Read side: GET /results (cached at most 1 s), /votes/{id}, /results/stream, the page.
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    database_pool_size: int = 5
    database_timeout_s: float = 2.0
    results_max_age_s: float = 1.0
    results_poll_s: float = 1.0
    sse_heartbeat_s: float = 15.0
    # Pipeline metrics on /metrics (docs/monitoring.md): readings of the stream and of
    # PostgreSQL younger than the max age are served as they are; a scrape waits at most the
    # timeout for fresh ones, then serves the last ones with their age.
    pipeline_metrics_max_age_s: float = 5.0
    pipeline_metrics_timeout_s: float = 2.0
    # Per-worker HTTP limits (docs/security.md): concurrent connections or requests before
    # uvicorn answers 503 (SSE streams count), bytes of one request's line and headers, and
    # idle keep-alive seconds.
    limit_concurrency: int = 4096
    max_header_bytes: int = 16 * 1024
    keep_alive_s: int = 5

    @classmethod
    def from_env(cls, env: Environ | None = None) -> IngestSettings:
        """Read and check every variable; raise SettingsError naming the first bad one."""
        env = process_environ() if env is None else env
        return cls(
            redis_url=redis_url(env),
            options=vote_options(env),
            names=stream_names(env),
            topology=redis_topology(env),
            max_backlog=env_int(env, ENV_MAX_BACKLOG, cls.max_backlog, minimum=1),
            host=env_str(env, ENV_HOST, cls.host),
            port=_port(env),
            max_body_bytes=env_int(env, ENV_MAX_BODY_BYTES, cls.max_body_bytes, minimum=64),
            redis_timeout_s=_positive(env, ENV_REDIS_TIMEOUT_S, cls.redis_timeout_s),
            backlog_refresh_s=_positive(env, ENV_BACKLOG_REFRESH_S, cls.backlog_refresh_s),
            retry_after_s=env_int(env, ENV_RETRY_AFTER_S, cls.retry_after_s, minimum=1),
            log_format=log_format(env),
            **_durability(env),
            database_url=database_url(env),
            database_pool_size=env_int(
                env, ENV_DATABASE_POOL_SIZE, cls.database_pool_size, minimum=1
            ),
            database_timeout_s=_positive(env, ENV_DATABASE_TIMEOUT_S, cls.database_timeout_s),
            results_max_age_s=_results_max_age(env),
            pipeline_metrics_max_age_s=_positive(
                env, ENV_PIPELINE_METRICS_MAX_AGE_S, cls.pipeline_metrics_max_age_s
            ),
            pipeline_metrics_timeout_s=_positive(
                env, ENV_PIPELINE_METRICS_TIMEOUT_S, cls.pipeline_metrics_timeout_s
            ),
            limit_concurrency=env_int(env, ENV_LIMIT_CONCURRENCY, cls.limit_concurrency, minimum=1),
            max_header_bytes=env_int(env, ENV_MAX_HEADER_BYTES, cls.max_header_bytes, minimum=1024),
            keep_alive_s=env_int(env, ENV_KEEP_ALIVE_S, cls.keep_alive_s, minimum=1),
        )


def _durability(env: Environ) -> dict[str, Any]:
    raw = env_str(env, ENV_ACK_DURABILITY, IngestSettings.ack_durability).lower()
    try:
        level = Durability(raw)
    except ValueError:
        choices = ", ".join(level.value for level in Durability)
        raise SettingsError(f"{ENV_ACK_DURABILITY} must be one of {choices}") from None
    timeout = _positive(env, ENV_ACK_REPLICA_TIMEOUT_S, IngestSettings.ack_replica_timeout_s)
    redis_timeout = _positive(env, ENV_REDIS_TIMEOUT_S, IngestSettings.redis_timeout_s)
    if level is Durability.REPLICA and timeout >= redis_timeout:
        raise SettingsError(
            f"{ENV_ACK_REPLICA_TIMEOUT_S} must be < {ENV_REDIS_TIMEOUT_S} ({redis_timeout}),"
            f" got {timeout}"
        )
    return {
        "ack_durability": level,
        "ack_replicas": env_int(env, ENV_ACK_REPLICAS, IngestSettings.ack_replicas, minimum=1),
        "ack_replica_timeout_s": timeout,
    }


def _port(env: Environ) -> int:
    port = env_int(env, ENV_PORT, IngestSettings.port, minimum=1)
    if port > 65535:
        raise SettingsError(f"{ENV_PORT} must be <= 65535, got {port}")
    return port


def _positive(env: Environ, name: str, default: float) -> float:
    value = env_float(env, name, default)
    if value <= 0:
        raise SettingsError(f"{name} must be > 0, got {value}")
    return value


def _results_max_age(env: Environ) -> float:
    value = _positive(env, ENV_RESULTS_MAX_AGE_S, IngestSettings.results_max_age_s)
    if value > 1:
        raise SettingsError(f"{ENV_RESULTS_MAX_AGE_S} must be <= 1 (seconds), got {value}")
    return value
