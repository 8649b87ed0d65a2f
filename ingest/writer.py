"""A coalescing stream writer: the XADDs of one event-loop turn share one socket write.

Requests append their command to the open batch and await their own future. A writer task
sends each batch as one packed write on a dedicated connection; a reader task reads the
replies in order (Redis answers a connection's commands FIFO) and resolves the futures. No
lock is held between batches, so a batch is on the wire while the previous one is answered.

At ACK_DURABILITY=replica a batch ends with `WAIT <replicas> <timeout>`: its XADDs are
confirmed only once that many replicas acknowledged them (one WAIT per batch: a group
commit), and fail with WriteError when fewer did in time. WAIT blocks the connection, so the
next batch, already on the wire, is applied right after it.

Every batch has a deadline of `timeout` seconds from its first request: whatever is not
confirmed by then fails with WriteError. A failed write, a closed connection or a batch
Redis has not answered by its deadline drops the connection, failing exactly the batches in
flight on it; the next batch connects again.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import hiredis
from redis.asyncio.connection import AbstractConnection, Connection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

logger = logging.getLogger(__name__)

Field = str | bytes | int


# hiredis packs in C what redis-py's pack_commands does in Python, >10x faster (redis-py's sync
# client uses it too). Its stub types the argument as a 1-tuple, hence the cast.
pack_command = cast(Callable[[tuple[Field, ...]], bytes], hiredis.pack_command)


class WriteError(Exception):
    """Redis did not confirm the write: unreachable, failing, or slower than the timeout;
    `reason` is the error code the client gets."""

    def __init__(self, message: str, reason: str = "redis_unavailable") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Replicas:
    """Confirm a batch only once `count` replicas have it, waiting at most `timeout_s`."""

    count: int
    timeout_s: float

    @property
    def command(self) -> tuple[Field, ...]:
        # WAIT's timeout is in ms and 0 means forever: never less than 1.
        return ("WAIT", self.count, max(1, round(self.timeout_s * 1000)))


@dataclass(slots=True, eq=False)
class _Batch:
    commands: list[tuple[Field, ...]] = field(default_factory=list)
    futures: list[asyncio.Future[str]] = field(default_factory=list)
    # XADD replies held back until the batch's WAIT reply (ACK_DURABILITY=replica).
    held: list[object] = field(default_factory=list)
    expected: int = 0  # replies the batch gets: one per command, plus WAIT's
    deadline: asyncio.TimerHandle | None = None
    replied: int = 0
    sent: bool = False
    expired: bool = False

    def fail(self, exc: BaseException) -> None:
        # A failed batch must not expire later and be mistaken for a stall of a newer connection.
        if self.deadline is not None:
            self.deadline.cancel()
        for future in self.futures:
            if not future.done():
                future.set_exception(exc)


def connection_from_url(url: str, connect_timeout: float) -> AbstractConnection:
    """One connection (AUTH, SELECT and TLS from the URL), without redis-py's own retries:
    the writer reconnects on the next batch, and reads are bounded by batch deadlines."""
    kwargs: dict[str, Any] = dict(parse_url(url))
    connection_class = kwargs.pop("connection_class", Connection)
    conn: AbstractConnection = connection_class(
        **kwargs,
        socket_timeout=None,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return conn


class StreamWriter:
    """Appends entries to one stream; `xadd` returns a future of the entry ID."""

    def __init__(
        self,
        connect: Callable[[], AbstractConnection],
        stream: str,
        timeout: float,
        on_batch: Callable[[int], None] | None = None,
        replicas: Replicas | None = None,
        command: tuple[Field, ...] | None = None,
    ) -> None:
        self._connect = connect
        self._replicas = replicas
        self._stream = stream
        # What precedes an entry's fields: XADD, or the EVALSHA of a sharded layout's script.
        self._command = command or ("XADD", stream, "*")
        self._timeout = timeout
        self._on_batch = on_batch
        self._open: _Batch | None = None
        self._inflight: deque[_Batch] = deque()
        self._wake = asyncio.Event()
        self._conn: AbstractConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._was_connected = True  # so that the first failure is logged, later ones not
        self._refusing = False  # likewise for refusals (OOM at maxmemory, say): one log line

    @classmethod
    def from_url(
        cls,
        url: str,
        stream: str,
        timeout: float,
        on_batch: Callable[[int], None] | None = None,
        replicas: Replicas | None = None,
    ) -> StreamWriter:
        connect = partial(connection_from_url, url, timeout)
        return cls(connect, stream, timeout, on_batch, replicas)

    async def start(self) -> None:
        """Connect (so the first votes do not wait for it), then start writing; Redis being
        unreachable now is not an error, batches connect again when they come."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._connection()
        except (RedisError, OSError) as exc:
            logger.warning("redis writer not connected yet", extra={"error": str(exc) or repr(exc)})
            self._was_connected = False
        self._task = asyncio.create_task(self._write_loop(), name="stream-writer")

    def xadd(self, fields: Sequence[Field]) -> asyncio.Future[str]:
        """Queue `XADD <stream> * <fields>` (never MAXLEN); the future gets the entry ID."""
        if self._closing:
            raise WriteError("the writer is shutting down")
        loop = asyncio.get_running_loop()
        batch = self._open
        if batch is None:
            batch = self._open = _Batch()
            batch.deadline = loop.call_later(self._timeout, self._expire, batch)
            self._wake.set()
        future: asyncio.Future[str] = loop.create_future()
        batch.commands.append((*self._command, *fields))
        batch.futures.append(future)
        return future

    async def aclose(self) -> None:
        """Send what is queued, wait (bounded by the deadlines) for replies, disconnect."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        waiting = [f for batch in self._inflight for f in batch.futures if not f.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=self._timeout * 2)
        self._drop_connection(self._conn, WriteError("the writer is shut down"))
        if self._background:
            await asyncio.wait(self._background)

    async def _write_loop(self) -> None:
        while True:
            batch, self._open = self._open, None
            if batch is not None:
                await self._send(batch)
            elif self._closing:
                return
            else:
                await self._wake.wait()
                self._wake.clear()

    async def _send(self, batch: _Batch) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                conn = await self._connection()
                if batch.expired:
                    return
                commands = batch.commands
                if self._replicas is not None:
                    commands = [*commands, self._replicas.command]
                packed = b"".join(map(pack_command, commands))
                batch.expected = len(commands)
                batch.sent = True
                self._inflight.append(batch)
                if self._on_batch is not None:
                    self._on_batch(len(batch.commands))
                await conn.send_packed_command(packed, check_health=False)
        except (RedisError, OSError) as exc:
            if self._was_connected:
                logger.warning("redis write failed", extra={"error": str(exc) or repr(exc)})
            self._was_connected = False
            unavailable = WriteError(f"redis write failed: {exc!r}")
            batch.fail(unavailable)
            self._drop_connection(self._conn, unavailable)

    async def _connection(self) -> AbstractConnection:
        if self._conn is not None:
            return self._conn
        conn = self._connect()
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        self._conn = conn
        self._reader = asyncio.create_task(self._read_loop(conn), name="stream-reader")
        logger.info("redis writer connected")
        self._was_connected = True
        return conn

    async def _read_loop(self, conn: AbstractConnection) -> None:
        # Reads even while nothing is in flight, so a connection the server closed is noticed
        # (and dropped) before the next batch is written to it.
        while True:
            try:
                reply = await conn.read_response(disable_decoding=True, timeout=math.inf)
            except ResponseError as exc:
                reply = exc
            except (RedisError, OSError) as exc:
                if conn is self._conn:
                    logger.warning("redis connection lost", extra={"error": str(exc) or repr(exc)})
                self._drop_connection(conn, WriteError(f"redis connection lost: {exc!r}"))
                return
            if not self._deliver(reply):
                self._drop_connection(conn, WriteError("unexpected reply from redis"))
                return

    def _deliver(self, reply: object) -> bool:
        if not self._inflight:
            return False
        batch = self._inflight[0]
        batch.replied += 1
        if batch.replied == batch.expected:
            self._inflight.popleft()
            if batch.deadline is not None:
                batch.deadline.cancel()
        if batch.replied <= len(batch.futures):
            if self._replicas is None:
                self._settle(batch.futures[batch.replied - 1], reply)
            else:
                batch.held.append(reply)
            return True
        return self._replicated(batch, reply)

    def _replicated(self, batch: _Batch, reply: object) -> bool:
        """WAIT's reply: the number of replicas that acknowledged the batch in time."""
        assert self._replicas is not None
        if isinstance(reply, ResponseError):  # NOPERM without +wait, say: say so, once a batch
            logger.warning("redis refused WAIT", extra={"error": str(reply)})
            batch.fail(WriteError(f"redis refused WAIT: {reply}"))
            return True
        if not isinstance(reply, int):
            return False
        if reply >= self._replicas.count:
            for future, held in zip(batch.futures, batch.held, strict=True):
                self._settle(future, held)
            return True
        logger.warning(
            "replicas did not confirm a batch in time",
            extra={"replicas": reply, "wanted": self._replicas.count},
        )
        batch.fail(
            WriteError(
                f"{reply} of {self._replicas.count} replicas confirmed within"
                f" {self._replicas.timeout_s}s",
                reason="not_replicated",
            )
        )
        return True

    def _settle(self, future: asyncio.Future[str], reply: object) -> None:
        if future.done():
            return
        if isinstance(reply, bytes):
            self._refusing = False
            future.set_result(reply.decode())
            return
        if not self._refusing:
            logger.warning("redis refused a write", extra={"error": str(reply)})
        self._refusing = True
        future.set_exception(WriteError(f"redis refused the write: {reply!r}"))

    def _expire(self, batch: _Batch) -> None:
        batch.expired = True
        if self._open is batch:
            self._open = None
        unavailable = WriteError(f"redis did not confirm within {self._timeout}s")
        batch.fail(unavailable)
        if batch.sent and batch.replied < batch.expected:
            logger.warning("redis did not answer in time; reconnecting")
            self._drop_connection(self._conn, unavailable)

    def _drop_connection(self, conn: AbstractConnection | None, exc: BaseException) -> None:
        if conn is not self._conn or conn is None:
            return
        self._conn = None
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            self._background.add(reader)
            reader.add_done_callback(self._background.discard)
        while self._inflight:
            self._inflight.popleft().fail(exc)
        task = asyncio.get_running_loop().create_task(conn.disconnect(nowait=True))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
