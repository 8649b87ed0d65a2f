"""A TCP proxy on loopback that a test can cut and restore, stall, or make swallow the
server's replies, to play a network failure: cut drops the connections; stall keeps them open
and forwards nothing (a half-open connection, a server that no longer answers); swallowing
replies plays a write the server applied whose reply never came."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from tests.support.servers import free_port


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.stalled = False
        # While set, what the server sends is dropped: requests still reach it and apply.
        self.swallow_replies = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones mid-stream."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, upstream_writer}
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer),
            self._pipe(upstream_reader, client_writer, replies=True),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replies: bool = False
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if self.stalled or (replies and self.swallow_replies):
                    continue
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)


Command = list[bytes]


def split_commands(buffer: bytearray) -> list[tuple[bytes, Command]]:
    """Take the complete RESP commands (arrays of bulk strings, as clients send them) off the
    front of `buffer`: each as its raw bytes and its parts."""
    commands: list[tuple[bytes, Command]] = []
    while (parsed := _one_command(buffer)) is not None:
        size, parts = parsed
        commands.append((bytes(buffer[:size]), parts))
        del buffer[:size]
    return commands


def _one_command(buffer: bytearray) -> tuple[int, Command] | None:
    end = buffer.find(b"\r\n")
    if end < 0:
        return None
    if buffer[:1] != b"*":
        raise ValueError(f"not a RESP array: {bytes(buffer[:20])!r}")
    position, parts = end + 2, []
    for _ in range(int(buffer[1:end])):
        header_end = buffer.find(b"\r\n", position)
        if header_end < 0:
            return None
        length = int(buffer[position + 1 : header_end])
        start = header_end + 2
        if len(buffer) < start + length + 2:
            return None
        parts.append(bytes(buffer[start : start + length]))
        position = start + length + 2
    return position, parts


class CommandCutProxy(TcpProxy):
    """A Redis proxy that cuts one connection between two commands, the moment a command
    matching `second` follows one matching `first` on it (in either order when `any_order`).

    The commands before the cut reach Redis and are executed (its reply read to the end, so
    nothing is in flight); the later ones never reach it; the client sees its connection
    reset. Later connections pass untouched. `on_cut` runs at the cut.
    """

    def __init__(
        self,
        target_port: int,
        first: Callable[[Command], bool],
        second: Callable[[Command], bool],
        *,
        any_order: bool = True,
        on_cut: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(target_port)
        self._matchers = (first, second)
        self._any_order = any_order
        self._on_cut = on_cut
        self.cuts = 0

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, upstream_writer}
        # Replies flow back until Redis closes; then the client's connection is dropped.
        replies = asyncio.ensure_future(self._pipe(upstream_reader, client_writer))
        if not await self._commands(client_reader, upstream_writer):
            upstream_writer.transport.abort()
        await replies
        upstream_writer.transport.abort()
        self._writers.discard(upstream_writer)

    async def _commands(self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> bool:
        """Forward whole commands; True once this connection was cut."""
        buffer, seen = bytearray(), [False, False]
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                buffer += data
                for raw, parts in split_commands(buffer):
                    which = [match(parts) for match in self._matchers]
                    if self.cuts == 0 and self._completes_pair(seen, which):
                        await self._cut(upstream)
                        return True
                    seen = [s or w for s, w in zip(seen, which, strict=True)]
                    upstream.write(raw)
                await upstream.drain()
        return False

    def _completes_pair(self, seen: list[bool], which: list[bool]) -> bool:
        if which[1] and seen[0]:
            return True
        return self._any_order and which[0] and seen[1]

    async def _cut(self, upstream: asyncio.StreamWriter) -> None:
        self.cuts += 1
        if self._on_cut is not None:
            self._on_cut()
        await upstream.drain()
        upstream.write_eof()  # Redis executes what it got, then reads the end and closes
