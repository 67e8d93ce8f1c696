"""A local HTTP server that serves @context documents to the broker under test."""

from __future__ import annotations

import json
import threading
from typing import Any

from conformance.threaded import QuietHandler, ThreadedServer


class ContextServer:
    """Serves ``documents`` (path -> JSON) and counts the requests per path."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.documents: dict[str, Any] = {}
        self.hits: dict[str, int] = {}
        self.delay: dict[str, float] = {}
        server = self

        class Handler(QuietHandler):
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

        self._server = ThreadedServer(host, Handler)
        self.base = f"http://{host}:{self._server.port}"

    def add(self, path: str, document: Any) -> str:
        self.documents[path] = document
        return self.base + path

    def close(self) -> None:
        self._server.close()
