"""A throwaway certificate authority, a server certificate for 127.0.0.1 and a client
certificate, made with the openssl command line: for the TLS benchmark rows
(loadtest/bench_shards.py --tls) and the TLS tests (tests/support/certs.py)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_args(self) -> tuple[str, ...]:
        """redis-server options: TLS only, client certificates required."""
        return (
            *("--tls-cert-file", str(self.server_cert), "--tls-key-file", str(self.server_key)),
            *("--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "yes"),
        )

    def peer_args(self) -> tuple[str, ...]:
        """redis-server options of a node that is also a TLS client of its peers (replication,
        the cluster bus, sentinels' links): it presents the client certificate."""
        return (
            *("--tls-client-cert-file", str(self.client_cert)),
            *("--tls-client-key-file", str(self.client_key), "--tls-replication", "yes"),
        )

    def cli_args(self) -> tuple[str, ...]:
        """redis-cli options to reach a node that requires client certificates."""
        return ("--tls", "--cacert", str(self.ca), "--cert", str(self.client_cert),
                "--key", str(self.client_key))  # fmt: skip

    def client_kwargs(self) -> dict[str, Any]:
        """redis-py keyword arguments that verify the server and present our cert."""
        return {
            "ssl": True,
            "ssl_ca_certs": str(self.ca),
            "ssl_certfile": str(self.client_cert),
            "ssl_keyfile": str(self.client_key),
        }

    def url_query(self) -> str:
        """The rediss:// query that makes redis-py verify the server and present our cert."""
        params = {
            "ssl_ca_certs": self.ca,
            "ssl_certfile": self.client_cert,
            "ssl_keyfile": self.client_key,
            "ssl_cert_reqs": "required",
        }
        return "?" + urlencode({key: str(value) for key, value in params.items()})


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def _signed(directory: Path, ca: Path, ca_key: Path, name: str, extensions: str) -> Path:
    key, csr, cert, ext = (directory / f"{name}.{s}" for s in ("key", "csr", "crt", "ext"))
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={name}")  # fmt: skip
    ext.write_text(extensions)
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-days", "2", "-out", cert, "-extfile", ext)  # fmt: skip
    return cert


def make_certificates(directory: Path) -> TlsFiles:
    """A CA, a server certificate valid for 127.0.0.1/localhost and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=test CA")  # fmt: skip
    server = _signed(
        directory, ca, ca_key, "server",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )  # fmt: skip
    client = _signed(directory, ca, ca_key, "client", "extendedKeyUsage=clientAuth\n")
    return TlsFiles(ca, server, directory / "server.key", client, directory / "client.key")
