"""Logging set-up: plain text or JSON lines."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
from aiohttp.http_exceptions import HttpProcessingError


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["requestId"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class MalformedRequests(logging.Filter):
    """One warning line, no traceback, for a request aiohttp could not parse.

    aiohttp answers those 400 itself, before the application sees them, and
    logs each at ERROR with a traceback: noise from scanners and broken
    clients, not a fault of the broker.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 0) < 500:
            first_line = next((ln.strip() for ln in str(exc.message).splitlines() if ln.strip()),
                              type(exc).__name__)
            record.msg = "malformed HTTP request from %s answered %d: %s"
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.args = (peer, exc.code, first_line)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_malformed_requests() -> None:
    """Install :class:`MalformedRequests` on aiohttp's server logger (once)."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in server_log.filters):
        server_log.addFilter(MalformedRequests())


def setup_logging(level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_malformed_requests()
