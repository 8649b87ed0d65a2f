"""A PostgreSQL cluster of a test's own that accepts only TLS connections (hostssl), with a
server certificate from the test's CA. Runs as the `postgres` user when the tests run as root
(the server refuses root)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.certs import TlsFiles
from tests.support.servers import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


@dataclass
class TlsPostgres:
    port: int
    ca: Path
    process: subprocess.Popen[bytes]
    workdir: Path

    def url(self, query: str = "") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres{query}"

    def stop(self) -> None:
        # Fast shutdown (no waiting for clients), by pg_ctl: runuser does not forward SIGINT.
        stop = [str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.workdir / "data"), "-m", "fast"]
        subprocess.run(_as_postgres(stop), capture_output=True, check=False, timeout=30)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_tls_postgres(tls: TlsFiles) -> TlsPostgres:
    """Started in a temporary directory of its own (pytest's are private to root)."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 binaries not found in {PG_BIN}")
    workdir = Path(tempfile.mkdtemp(prefix="vote-pg-tls-"))
    workdir.chmod(0o755)
    data = workdir / "data"
    data.mkdir(mode=0o700)
    _own(data)
    initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]
    subprocess.run(_as_postgres(initdb), check=True, capture_output=True, timeout=120)
    for source, name in ((tls.server_cert, "server.crt"), (tls.server_key, "server.key")):
        target = data / name
        shutil.copy(source, target)
        target.chmod(0o600)
        _own(target)
    (data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 trust\n")
    port = free_port()
    server = [
        str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
        "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on", "-c", "fsync=off",
    ]  # fmt: skip
    process = subprocess.Popen(
        _as_postgres(server), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ready = [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-t", "1"]
    deadline = time.monotonic() + 60  # generous: the machine may be loaded
    while subprocess.run(ready, capture_output=True, check=False).returncode != 0:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            shutil.rmtree(workdir, ignore_errors=True)
            pytest.fail("the TLS PostgreSQL did not start")
        time.sleep(0.1)
    return TlsPostgres(port, tls.ca, process, workdir)
