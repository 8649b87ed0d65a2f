"""Readers of the variables every component shares (ingest, processor, runner), so that each
is checked the same way everywhere."""

from __future__ import annotations

from votecontract.environment import Environ, SettingsError, env_list, env_str, env_url
from votecontract.names import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    DEFAULT_VOTE_GROUP,
    DEFAULT_VOTE_OPTIONS,
    DEFAULT_VOTE_STREAM,
    ENV_DATABASE_URL,
    ENV_LOG_FORMAT,
    ENV_REDIS_URL,
    ENV_VOTE_GROUP,
    ENV_VOTE_OPTIONS,
    ENV_VOTE_STREAM,
    StreamNames,
)
from votecontract.topology import RedisTopology, check_url

REDIS_SCHEMES = ("redis", "rediss", "unix")
POSTGRES_SCHEMES = ("postgresql", "postgres")
LOG_FORMATS = ("json", "text")


def redis_url(env: Environ) -> str:
    return env_url(env, ENV_REDIS_URL, DEFAULT_REDIS_URL, REDIS_SCHEMES)


def database_url(env: Environ) -> str:
    return env_url(env, ENV_DATABASE_URL, DEFAULT_DATABASE_URL, POSTGRES_SCHEMES)


def vote_options(env: Environ) -> tuple[str, ...]:
    return env_list(env, ENV_VOTE_OPTIONS, DEFAULT_VOTE_OPTIONS)


def stream_names(env: Environ) -> StreamNames:
    return StreamNames(
        stream=env_str(env, ENV_VOTE_STREAM, DEFAULT_VOTE_STREAM),
        group=env_str(env, ENV_VOTE_GROUP, DEFAULT_VOTE_GROUP),
    )


def log_format(env: Environ) -> str:
    value = env_str(env, ENV_LOG_FORMAT, "json").lower()
    if value not in LOG_FORMATS:
        raise SettingsError(f"{ENV_LOG_FORMAT} must be one of {', '.join(LOG_FORMATS)}")
    return value


def redis_topology(env: Environ) -> RedisTopology:
    """REDIS_MODE, its sentinel variables and VOTE_SHARDS, checked against REDIS_URL."""
    topology = RedisTopology.from_env(env)
    check_url(topology, redis_url(env))
    return topology
