"""A notification receiver for the conformance cases: an HTTP server in a thread.

The broker under test must reach it: it listens on ``NGSI_LD_CONFORMANCE_HOST``
(default 127.0.0.1, as the context server) and gives the broker URLs with
``NGSI_LD_RECEIVER_HOST`` as their host when set (e.g. listen on 0.0.0.0 and
advertise ``host.docker.internal`` to a broker in a container).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from conformance.threaded import QuietHandler, ThreadedServer


@dataclass
class Notification:
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any


class NotificationReceiver:
    """Records every POST by path; ``wait(path, n)`` blocks until n have arrived."""

    def __init__(self, host: str | None = None, advertised: str | None = None) -> None:
        host = host or os.environ.get("NGSI_LD_CONFORMANCE_HOST", "127.0.0.1")
        advertised = advertised or os.environ.get("NGSI_LD_RECEIVER_HOST") or host
        self.received: list[Notification] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._cond:
                    receiver.received.append(Notification(self.path.lstrip("/"), headers, body))
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadedServer(host, Handler)
        self.base = f"http://{advertised}:{self._server.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def at(self, path: str) -> list[Notification]:
        with self._cond:
            return [n for n in self.received if n.path == path]

    def wait(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Notification]:
        """The first ``count`` notifications at ``path``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [n for n in self.received if n.path == path]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(found)} notifications at /{path} within "
                                         f"{timeout} s, expected {count}")
                self._cond.wait(remaining)

    def close(self) -> None:
        self._server.close()
