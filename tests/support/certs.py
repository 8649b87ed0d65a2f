"""The private CA of the TLS tests: loadtest/certs.py's, which the TLS benchmark uses too."""

from __future__ import annotations

from loadtest.certs import TlsFiles, make_certificates

__all__ = ["TlsFiles", "make_certificates"]
