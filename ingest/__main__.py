"""`python -m ingest`: serve the ingest app with uvicorn (one worker) on HOST:PORT.

SIGTERM (and Ctrl-C) is uvicorn's graceful shutdown: it stops accepting connections, lets
requests in flight finish, then runs the lifespan shutdown, which drains the stream writer.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import uvicorn

from ingest.app import create_app
from ingest.headlimit import head_limited_protocol
from ingest.settings import IngestSettings
from votecontract.environment import SettingsError, redact_url
from votecontract.jsonlog import configure_logging

logger = logging.getLogger("ingest")


def main() -> int:
    try:
        settings = IngestSettings.from_env()
    except SettingsError as exc:
        print(f"ingest: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    logging.getLogger("uvicorn.error").addFilter(_drop_color_message)
    logger.info(
        "starting ingest",
        extra={
            "host": settings.host,
            "port": settings.port,
            "redis_url": redact_url(settings.redis_url),
            "stream": settings.names.stream,
            "group": settings.names.group,
        },
    )
    server = uvicorn.Server(uvicorn_config(settings))
    # uvicorn re-raises the signal that stopped it once it has shut down; with the default
    # handler SIGTERM would then kill the process, so a clean drain would not exit 0.
    signal.signal(signal.SIGTERM, _after_shutdown)
    server.run()
    if not server.started:
        return 3
    logger.info("ingest stopped")
    return 0


def uvicorn_config(settings: IngestSettings) -> uvicorn.Config:
    """The server `python -m ingest` runs (loadtest/profile_ingest.py profiles the same)."""
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        http=head_limited_protocol(settings.max_header_bytes),
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=settings.keep_alive_s,
    )


def _drop_color_message(record: logging.LogRecord) -> bool:
    # uvicorn attaches an ANSI-coloured copy of some messages; it has no place in JSON lines.
    record.__dict__.pop("color_message", None)
    return True


def _after_shutdown(signum: int, frame: FrameType | None) -> None:
    logger.info("shut down on signal", extra={"signal": signal.Signals(signum).name})


if __name__ == "__main__":
    sys.exit(main())
