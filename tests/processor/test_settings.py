"""ProcessorSettings.from_env."""

from __future__ import annotations

import socket

import pytest

from processor.settings import ProcessorSettings
from votecontract.environment import SettingsError
from votecontract.names import ENV_DATABASE_APP_ROLE


def test_defaults_are_usable() -> None:
    settings = ProcessorSettings.from_env({})
    assert settings.names.stream == "votes"
    assert settings.names.group == "processors"
    assert settings.options == ("cats", "dogs")
    assert settings.consumer == socket.gethostname()
    assert settings.ready_file is None
    assert settings.test_stop_after_commit is None


def test_consumer_name_prefers_consumer_name_then_job_name() -> None:
    assert ProcessorSettings.from_env({"JOB_NAME": "job-7"}).consumer == "job-7"
    both = {"JOB_NAME": "job-7", "CONSUMER_NAME": "c-1"}
    assert ProcessorSettings.from_env(both).consumer == "c-1"


def test_values_are_read() -> None:
    settings = ProcessorSettings.from_env(
        {
            "REDIS_URL": "rediss://user:pw@redis:6380/2",
            "VOTE_OPTIONS": "a,b,c",
            "BATCH_SIZE": "123",
            "MAX_RUNTIME_S": "2.5",
            "READY_FILE": "/tmp/ready",
            "LOG_FORMAT": "TEXT",
        }
    )
    assert settings.redis_url == "rediss://user:pw@redis:6380/2"
    assert settings.options == ("a", "b", "c")
    assert (settings.batch_size, settings.max_runtime_s) == (123, 2.5)
    assert (settings.ready_file, settings.log_format) == ("/tmp/ready", "text")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BATCH_SIZE": "0"}, "BATCH_SIZE"),
        ({"MAX_DELIVERIES": "many"}, "MAX_DELIVERIES"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"RETRY_BACKOFF_MS": "500", "RETRY_BACKOFF_MAX_MS": "100"}, "RETRY_BACKOFF_MAX_MS"),
        ({"PROCESSOR_TEST_STOP_AFTER_COMMIT": "0"}, "PROCESSOR_TEST_STOP_AFTER_COMMIT"),
    ],
)
def test_a_bad_value_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        ProcessorSettings.from_env(env)


def test_errors_never_echo_a_password() -> None:
    with pytest.raises(SettingsError) as info:
        ProcessorSettings.from_env({"DATABASE_URL": "mysql://u:secret@x/db"})
    assert "secret" not in str(info.value)


def test_the_app_role_to_grant_is_optional() -> None:
    assert ProcessorSettings.from_env({}).app_role is None
    env = {ENV_DATABASE_APP_ROLE: " vote_app "}
    assert ProcessorSettings.from_env(env).app_role == "vote_app"


def test_credentials_stay_out_of_the_settings_repr() -> None:
    settings = ProcessorSettings.from_env(
        {
            "REDIS_URL": "redis://processor:r3dis-secret@redis:6379/0",
            "DATABASE_URL": "postgresql://app:pg-secret@db/votes",
        }
    )
    assert "r3dis-secret" not in repr(settings)
    assert "pg-secret" not in repr(settings)
