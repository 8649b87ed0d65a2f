from __future__ import annotations

from loadtest.run import OWN_DATABASE, OWN_STREAM, own_pipeline_config


def test_a_started_pipeline_uses_its_own_stream_and_database_by_default() -> None:
    config = own_pipeline_config({}, 1.0)
    assert config.names.stream == OWN_STREAM
    assert config.database_url.endswith(f"/{OWN_DATABASE}")
    assert config.polling_interval_s == 1.0


def test_the_environment_names_them_when_set() -> None:
    env = {"VOTE_STREAM": "mine", "DATABASE_URL": "postgresql://u@h/db1", "VOTE_GROUP": "g"}
    config = own_pipeline_config(env, None)
    assert (config.names.stream, config.names.group) == ("mine", "g")
    assert config.database_url == "postgresql://u@h/db1"
