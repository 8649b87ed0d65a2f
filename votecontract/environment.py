"""Typed reads of environment variables that fail fast, naming the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


Environ = Mapping[str, str]


def env_str(env: Environ, name: str, default: str) -> str:
    value = env.get(name, default).strip()
    if not value:
        raise SettingsError(f"{name} must not be empty")
    return value


def env_int(env: Environ, name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(env: Environ, name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value != value or value < minimum:
        raise SettingsError(f"{name} must be a number >= {minimum}, got {raw!r}")
    return value


def env_list(env: Environ, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    items = tuple(item.strip() for item in raw.split(","))
    if any(not item for item in items):
        raise SettingsError(f"{name} must be a comma-separated list without empty items")
    if len(set(items)) != len(items):
        raise SettingsError(f"{name} must not repeat an item")
    return items


def env_url(env: Environ, name: str, default: str, schemes: tuple[str, ...]) -> str:
    """A URL with one of `schemes`; errors never echo the URL, which may hold a password."""
    value = env_str(env, name, default)
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise SettingsError(f"{name} must be a URL starting with one of {', '.join(schemes)}")
    try:
        parts.port  # noqa: B018 - parsing it is the check; the clients would fail later
    except ValueError:
        raise SettingsError(f"{name} has an invalid port (must be 0-65535)") from None
    return value


def process_environ() -> Environ:
    return dict(os.environ)


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:***@{host}{port}" if user else f":***@{host}{port}"
    return parts._replace(netloc=netloc).geturl()
