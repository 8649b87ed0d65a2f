"""Security fixtures: a redis-server with the shipped ACL (plain and TLS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import TlsFiles, make_certificates
from tests.support.redisacl import AclRedis, acl_server
from votecontract.names import StreamNames


@pytest.fixture
def acl_redis(tmp_path: Path, stream_names: StreamNames) -> Iterator[AclRedis]:
    redis = acl_server(tmp_path, stream_names)
    redis.server.start()
    try:
        yield redis
    finally:
        redis.server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_redis(tmp_path: Path, stream_names: StreamNames, tls_files: TlsFiles) -> Iterator[AclRedis]:
    """The ACL'd server, listening only for TLS with client certificates required."""
    redis = acl_server(tmp_path, stream_names, tls_files)
    redis.server.start()
    try:
        yield redis
    finally:
        redis.server.stop()
