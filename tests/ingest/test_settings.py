"""IngestSettings.from_env: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from ingest.durability import Durability
from ingest.settings import IngestSettings
from votecontract.environment import SettingsError
from votecontract.names import (
    ENV_ACK_DURABILITY,
    ENV_ACK_REPLICA_TIMEOUT_S,
    ENV_ACK_REPLICAS,
    ENV_BACKLOG_REFRESH_S,
    ENV_HOST,
    ENV_LOG_FORMAT,
    ENV_MAX_BACKLOG,
    ENV_MAX_BODY_BYTES,
    ENV_PORT,
    ENV_REDIS_TIMEOUT_S,
    ENV_REDIS_URL,
    ENV_RETRY_AFTER_S,
    ENV_VOTE_GROUP,
    ENV_VOTE_OPTIONS,
    ENV_VOTE_STREAM,
    StreamNames,
)


def test_defaults() -> None:
    settings = IngestSettings.from_env({})
    assert settings == IngestSettings()
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.options == ("cats", "dogs")
    assert settings.names == StreamNames("votes", "processors")
    assert (settings.host, settings.port, settings.max_body_bytes) == ("127.0.0.1", 8000, 4096)


def test_every_variable_is_read() -> None:
    settings = IngestSettings.from_env(
        {
            ENV_REDIS_URL: "rediss://:secret@redis.example:6380/2",
            ENV_VOTE_OPTIONS: "tea, coffee ,water",
            ENV_VOTE_STREAM: "ballots",
            ENV_VOTE_GROUP: "workers",
            ENV_MAX_BACKLOG: "50",
            ENV_HOST: "0.0.0.0",
            ENV_PORT: "9000",
            ENV_MAX_BODY_BYTES: "8192",
            ENV_REDIS_TIMEOUT_S: "0.25",
            ENV_BACKLOG_REFRESH_S: "2",
            ENV_RETRY_AFTER_S: "5",
            ENV_LOG_FORMAT: "TEXT",
        }
    )
    assert settings == IngestSettings(
        redis_url="rediss://:secret@redis.example:6380/2",
        options=("tea", "coffee", "water"),
        names=StreamNames("ballots", "workers"),
        max_backlog=50,
        host="0.0.0.0",
        port=9000,
        max_body_bytes=8192,
        redis_timeout_s=0.25,
        backlog_refresh_s=2.0,
        retry_after_s=5,
        log_format="text",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (ENV_REDIS_URL, "http://127.0.0.1:6379"),
        (ENV_VOTE_OPTIONS, "cats,,dogs"),
        (ENV_VOTE_OPTIONS, "cats,cats"),
        (ENV_VOTE_STREAM, " "),
        (ENV_MAX_BACKLOG, "0"),
        (ENV_MAX_BACKLOG, "many"),
        (ENV_PORT, "http"),
        (ENV_PORT, "70000"),
        (ENV_MAX_BODY_BYTES, "10"),
        (ENV_REDIS_TIMEOUT_S, "0"),
        (ENV_REDIS_TIMEOUT_S, "nan"),
        (ENV_BACKLOG_REFRESH_S, "-1"),
        (ENV_RETRY_AFTER_S, "0"),
        (ENV_LOG_FORMAT, "xml"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        IngestSettings.from_env({name: value})


def test_errors_never_echo_the_redis_password() -> None:
    with pytest.raises(SettingsError) as error:
        IngestSettings.from_env({ENV_REDIS_URL: "http://:hunter2@127.0.0.1"})
    assert "hunter2" not in str(error.value)


def test_read_side_variables() -> None:
    settings = IngestSettings.from_env(
        {
            "DATABASE_URL": "postgresql://reader@db:5432/votes",
            "DATABASE_POOL_SIZE": "3",
            "DATABASE_TIMEOUT_S": "0.5",
            "RESULTS_MAX_AGE_S": "0.25",
        }
    )
    assert settings.database_url == "postgresql://reader@db:5432/votes"
    assert (settings.database_pool_size, settings.database_timeout_s) == (3, 0.5)
    assert settings.results_max_age_s == 0.25


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://db/votes"),
        ("DATABASE_POOL_SIZE", "0"),
        ("DATABASE_TIMEOUT_S", "0"),
        ("RESULTS_MAX_AGE_S", "1.5"),
        ("RESULTS_MAX_AGE_S", "0"),
    ],
)
def test_a_bad_read_side_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        IngestSettings.from_env({name: value})


def test_http_limits_are_read_and_checked() -> None:
    env = {"LIMIT_CONCURRENCY": "100", "MAX_HEADER_BYTES": "8192", "KEEP_ALIVE_S": "2"}
    settings = IngestSettings.from_env(env)
    assert (settings.limit_concurrency, settings.max_header_bytes, settings.keep_alive_s) == (
        100,
        8192,
        2,
    )
    with pytest.raises(SettingsError, match="MAX_HEADER_BYTES"):
        IngestSettings.from_env({"MAX_HEADER_BYTES": "10"})


def test_pipeline_metrics_variables_are_read_and_checked() -> None:
    env = {"PIPELINE_METRICS_MAX_AGE_S": "15", "PIPELINE_METRICS_TIMEOUT_S": "0.5"}
    settings = IngestSettings.from_env(env)
    assert (settings.pipeline_metrics_max_age_s, settings.pipeline_metrics_timeout_s) == (15, 0.5)
    for name in env:
        with pytest.raises(SettingsError, match=name):
            IngestSettings.from_env({name: "0"})


def test_ack_durability_defaults_to_memory_and_reads_every_level() -> None:
    assert IngestSettings.from_env({}).ack_durability is Durability.MEMORY
    replica = IngestSettings.from_env(
        {
            ENV_ACK_DURABILITY: " Replica ",
            ENV_ACK_REPLICAS: "2",
            ENV_ACK_REPLICA_TIMEOUT_S: "0.25",
        }
    )
    assert replica.ack_durability is Durability.REPLICA
    assert (replica.ack_replicas, replica.ack_replica_timeout_s) == (2, 0.25)
    fsync = IngestSettings.from_env({ENV_ACK_DURABILITY: "fsync"})
    assert fsync.ack_durability is Durability.FSYNC


REPLICA = {ENV_ACK_DURABILITY: "replica"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({ENV_ACK_DURABILITY: "disk"}, ENV_ACK_DURABILITY),
        ({ENV_ACK_DURABILITY: ""}, ENV_ACK_DURABILITY),
        ({ENV_ACK_REPLICAS: "0"}, ENV_ACK_REPLICAS),
        ({ENV_ACK_REPLICA_TIMEOUT_S: "0"}, ENV_ACK_REPLICA_TIMEOUT_S),
        # WAIT must give up before the request's own bound does (and never wait forever).
        ({**REPLICA, ENV_ACK_REPLICA_TIMEOUT_S: "1"}, ENV_ACK_REPLICA_TIMEOUT_S),
        ({**REPLICA, ENV_REDIS_TIMEOUT_S: "0.4"}, ENV_ACK_REPLICA_TIMEOUT_S),
    ],
)
def test_a_bad_durability_setting_names_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        IngestSettings.from_env(env)


def test_credentials_stay_out_of_the_settings_repr() -> None:
    settings = IngestSettings.from_env(
        {
            "REDIS_URL": "redis://ingest:r3dis-secret@redis:6379/0",
            "DATABASE_URL": "postgresql://app:pg-secret@db/votes",
        }
    )
    assert "r3dis-secret" not in repr(settings)
    assert "pg-secret" not in repr(settings)
