"""Access log of the HTTP services: one JSON line per request, with its duration and caller.

An observer of :class:`~clpm_shared.web.observed_requests.ObservedRequests`, the outermost
layer, so every request is logged, also those answered by the gateway's cached-hit layer and
those that fail. The line has the keys of every other log line
(:mod:`clpm_shared.logs`: ``ts``, ``level``, ``service``, ``logger``, ``event``) and::

    "event": "127.0.0.1:5555 - \\"GET /data/realtime?loopId=FIC-101 HTTP/1.1\\" 200",
    "method": "GET", "path": "/data/realtime", "status": 200, "duration_ms": 0.41,
    "client": "127.0.0.1:5555", "user": "viewer"

``event`` is the line uvicorn's own access log writes; ``duration_ms`` runs from the request
reaching the gateway to the last byte of the answer handed to the server; ``user`` is the
authenticated caller (absent when there is none). ``ts`` is when the answer was complete.

Written cheaply: uvicorn's access log builds a ``LogRecord``, formats it and flushes the stream
for every request (~15-20 us, a tenth of a cached answer's CPU time). Here the line is encoded
with orjson and the lines of one event-loop turn are written together, once per turn, to the
streams of the root logger's handlers (stdout, and the log file when there is one), under each
handler's lock. When the root logger has other handlers (tests capturing logs), the lines go
through ``logging`` instead, with the same keys. Each service names its access logger
(``clpm_api_gateway.access``, ``clpm_diagnostics.access``). Nothing is logged when the level
excludes ``info`` (``LOG_LEVEL=warning``).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_plus

import orjson
from starlette.types import Scope

from clpm_shared.logs import JsonLineFormatter

Entry = dict[str, Any]


class StreamLines:
    """Writes access lines to logging stream handlers, once per event-loop turn."""

    def __init__(self, handlers: Sequence[logging.StreamHandler[Any]]) -> None:
        self._handlers = tuple(handlers)
        self._pending: list[str] = []
        self._flush_scheduled = False
        atexit.register(self.flush)  # lines of the last turn before an exit are not lost

    def __call__(self, entry: Entry) -> None:
        self._pending.append(orjson.dumps(entry).decode())
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (shutting down): write now
            self.flush()
            return
        loop.call_soon(self.flush)
        self._flush_scheduled = True

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending:
            return
        text = "\n".join(self._pending) + "\n"
        self._pending.clear()
        for handler in self._handlers:
            handler.acquire()
            try:
                handler.stream.write(text)
                handler.stream.flush()
            except (OSError, ValueError):  # a closed or broken stream: as logging would
                handler.handleError(logging.makeLogRecord({"msg": "access log write failed"}))
            finally:
                handler.release()


class LoggingLines:
    """Writes access lines as ``logging`` records (for handlers other than plain streams)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def __call__(self, entry: Entry) -> None:
        extra = {key: value for key, value in entry.items() if key not in _RECORD_KEYS}
        self.logger.info(entry["event"], extra=extra)


_RECORD_KEYS = frozenset({"ts", "level", "service", "logger", "event"})


def access_line_writer(logger: logging.Logger) -> tuple[Callable[[Entry], None], str] | None:
    """Where ``logger``'s access lines go, and the service name they carry; ``None`` when the
    level excludes them.

    Plain stream handlers of the root logger with the JSON line formatter (the services' own
    configuration, :func:`clpm_shared.logs.configure_logging`): written to their streams.
    Anything else: through ``logging``.
    """
    if not logger.isEnabledFor(logging.INFO):
        return None
    handlers = logging.getLogger().handlers
    streams: list[logging.StreamHandler[Any]] = [
        handler
        for handler in handlers
        if isinstance(handler, logging.StreamHandler)
        and type(handler) in (logging.StreamHandler, logging.FileHandler)
        and isinstance(handler.formatter, JsonLineFormatter)
        and handler.level <= logging.INFO
    ]
    if handlers and len(streams) == len(handlers) and logger.propagate and not logger.handlers:
        formatter = streams[0].formatter
        assert isinstance(formatter, JsonLineFormatter)
        return StreamLines(streams), formatter.service
    return LoggingLines(logger), ""


def access_log_observer(logger_name: str) -> AccessLines | None:
    """The access log of logger ``logger_name`` (e.g. ``clpm_api_gateway.access``), an observer
    for :class:`~clpm_shared.web.observed_requests.ObservedRequests`; ``None`` when the log
    level excludes it."""
    writer = access_line_writer(logging.getLogger(logger_name))
    if writer is None:
        return None
    write, service = writer
    return AccessLines(write=write, service=service, logger_name=logger_name)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else ""


SECRET_PARAMETERS = frozenset(
    {"id_token_hint", "token", "access_token", "refresh_token", "code", "client_secret",
     "password", "code_verifier"}
)  # fmt: skip


def path_and_query(scope: Scope) -> str:
    """As uvicorn's access log shows it: the quoted path, then ``?`` and the raw query, with
    the values of token-like parameters (``id_token_hint``, ``code``...) replaced by ``***``."""
    path = quote(scope.get("root_path", "") + scope["path"])
    query = scope.get("query_string", b"").decode("ascii", "replace")
    if not query:
        return path
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}=***" if equals and unquote_plus(name) in SECRET_PARAMETERS else part)
    return f"{path}?{'&'.join(parts)}"


class AccessLines:
    """Makes the access line of each observed request and hands it to ``write``."""

    def __init__(
        self, *, write: Callable[[Entry], None], service: str = "", logger_name: str = "access"
    ) -> None:
        self.write = write
        self.service = service
        self.logger_name = logger_name

    def __call__(self, scope: Scope, status: int, elapsed_s: float) -> None:
        method = scope["method"]
        client = client_address(scope)
        entry: Entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "info",
            "service": self.service,
            "logger": self.logger_name,
            "event": f'{client} - "{method} {path_and_query(scope)} '
            f'HTTP/{scope.get("http_version", "1.1")}" {status}',
            "method": method,
            "path": scope["path"],
            "status": status,
            "duration_ms": round(elapsed_s * 1000.0, 3),
            "client": client,
        }
        state = scope.get("state")
        principal = state.get("principal") if state else None
        username = getattr(principal, "username", None)
        if username is not None:
            entry["user"] = username
        self.write(entry)
