"""uvicorn's httptools protocol with a bound on each request's head (request line + headers).

httptools, the fast parser uvicorn uses when it is installed, buffers a request head of any
size (measured: a 4 MB header is accepted), so one connection could make a worker hold
megabytes. This protocol refuses a head over `limit` bytes with 431 and a JSON error, then
closes the connection, in two places:
- as the parser hands over the URL and each header (their sizes add up);
- as bytes arrive while a head is incomplete: httptools hands a header over only once it is
  complete, so a single endless header is cut off here, at most one socket read (64 KiB)
  after crossing the limit.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEADER_OVERHEAD = 4  # ": " and CRLF


class HeadTooLargeError(Exception):
    """Raised in a parser callback; uvicorn turns it into its 400 path, which answers 431."""


def _response(limit: int) -> bytes:
    body = json.dumps(
        {"error": "headers_too_large", "detail": f"request line and headers exceed {limit} bytes"}
    ).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeadLimitedProtocol(HttpToolsProtocol):
    """Subclassed per limit by `head_limited_protocol` (uvicorn instantiates the class)."""

    head_limit = 16 * 1024
    _refusal = _response(head_limit)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._received = 0  # bytes received since the last head completed
        self._parsed = 0  # bytes of the current head handed over by the parser
        self._in_body = False
        self._too_large = False

    def data_received(self, data: bytes) -> None:
        if not self._in_body:
            self._received += len(data)
        super().data_received(data)
        if not self._in_body and self._received > self.head_limit:
            self._refuse()

    def on_message_begin(self) -> None:
        self._parsed = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + _HEADER_OVERHEAD)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_body, self._received = True, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body, self._received = False, 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse()
        else:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._parsed += size
        if self._parsed > self.head_limit:
            self._too_large = True
            raise HeadTooLargeError

    def _refuse(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(self._refusal)
            self.transport.close()


def head_limited_protocol(limit: int) -> type[HeadLimitedProtocol]:
    """The httptools protocol refusing request heads larger than `limit` bytes."""
    return type(
        "HeadLimitedProtocol",
        (HeadLimitedProtocol,),
        {"head_limit": limit, "_refusal": _response(limit)},
    )
