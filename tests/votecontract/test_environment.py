from __future__ import annotations

import pytest

from votecontract.environment import SettingsError, env_float, env_int, env_list, env_str, env_url


def test_env_int_default_and_value() -> None:
    assert env_int({}, "N", 7) == 7
    assert env_int({"N": " 12 "}, "N", 7) == 12


@pytest.mark.parametrize("raw", ["x", "1.5", "-3"])
def test_env_int_rejects_and_names_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match="BATCH_SIZE"):
        env_int({"BATCH_SIZE": raw}, "BATCH_SIZE", 1, minimum=1)


def test_env_float_rejects_nan() -> None:
    with pytest.raises(SettingsError, match="TIMEOUT"):
        env_float({"TIMEOUT": "nan"}, "TIMEOUT", 1.0)


def test_env_list_parses_and_rejects_empty_items() -> None:
    assert env_list({"OPTS": "a, b"}, "OPTS", ("x",)) == ("a", "b")
    assert env_list({}, "OPTS", ("x",)) == ("x",)
    with pytest.raises(SettingsError, match="OPTS"):
        env_list({"OPTS": "a,,b"}, "OPTS", ("x",))
    with pytest.raises(SettingsError, match="OPTS"):
        env_list({"OPTS": "a,a"}, "OPTS", ("x",))


def test_env_str_rejects_blank() -> None:
    with pytest.raises(SettingsError, match="NAME"):
        env_str({"NAME": "  "}, "NAME", "d")


def test_env_url_checks_scheme_without_echoing_secret() -> None:
    assert env_url({}, "U", "redis://h/0", ("redis", "rediss")) == "redis://h/0"
    with pytest.raises(SettingsError, match="U must be a URL") as info:
        env_url({"U": "http://user:hunter2@h/"}, "U", "redis://h", ("redis", "rediss"))
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("port", ["x", "99999", "-1"])
def test_env_url_rejects_a_bad_port_without_echoing_secret(port: str) -> None:
    with pytest.raises(SettingsError, match="U has an invalid port") as info:
        env_url({"U": f"redis://u:hunter2@h:{port}/0"}, "U", "redis://h", ("redis",))
    assert "hunter2" not in str(info.value)


def test_redact_url_hides_password_only() -> None:
    from votecontract.environment import redact_url

    assert redact_url("redis://u:pw@h:6379/0") == "redis://u:***@h:6379/0"
    assert redact_url("rediss://:pw@h/0") == "rediss://:***@h/0"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
