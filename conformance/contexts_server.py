"""A local HTTP server that serves @context documents to the broker under test."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ContextServer:
    """Serves ``documents`` (path -> JSON) and counts the requests per path."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.documents: dict[str, Any] = {}
        self.hits: dict[str, int] = {}
        self.delay: dict[str, float] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path in server.delay:
                    threading.Event().wait(server.delay[self.path])
                if self.path not in server.documents:
                    self.send_response(404)
                    self.end_headers()
                    return
                doc = server.documents[self.path]
                body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self.base = f"http://{host}:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def add(self, path: str, document: Any) -> str:
        self.documents[path] = document
        return self.base + path

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
