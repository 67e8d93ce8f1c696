"""A local HTTP server in a thread of its own, for the helpers the conformance cases
run beside the broker under test (the context server, the notification receiver)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["QuietHandler", "ThreadedServer"]


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (the cases' output stays readable)."""

    def log_message(self, *args: Any) -> None:
        pass


class ThreadedServer:
    """Serves ``handler`` on ``host`` at a free port, each request in a daemon thread,
    until :meth:`close`."""

    def __init__(self, host: str, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = ThreadingHTTPServer((host, 0), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
