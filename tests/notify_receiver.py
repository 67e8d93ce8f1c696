"""A real HTTP notification receiver for tests: an aiohttp server on 127.0.0.1.

Every POST is recorded with its path, headers, parsed body and arrival time.
A path can be told to answer with another status or after a delay, to play a
failing or slow endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() on arrival
    #: every header line's name, as sent (repeated names repeated)
    raw_headers: list[str] = field(default_factory=list)


@dataclass
class Receiver:
    """Start with ``await Receiver().start()``; ``url(path)`` is an endpoint URI."""

    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "notify") -> str:
        return f"http://{self.host}:{self.port}/{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        names = [name.decode("latin-1") for name, _ in request.raw_headers]
        self.received.append(Received(path, dict(request.headers), body, time.monotonic(),
                                      names))
        self._event.set()
        delay = self.delays.get(path)
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=self.statuses.get(path, 200))

    def at(self, path: str = "notify") -> list[Received]:
        return [r for r in self.received if r.path == path]

    def bodies(self, path: str = "notify") -> list[Any]:
        return [r.body for r in self.at(path)]

    def entities(self, path: str = "notify") -> list[tuple[Any, Received]]:
        """Every entity notified at ``path``, in arrival order, with its notification."""
        return [(entity, r) for r in self.at(path) for entity in r.body["data"]]

    async def wait_entities(self, count: int, path: str = "notify",
                            timeout: float = 5.0) -> list[tuple[Any, Received]]:
        """The first ``count`` entities notified at ``path`` (changes may share a notification)."""
        deadline = time.monotonic() + timeout
        while len(self.entities(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.entities(path))} entities at /{path} after "
                                     f"{timeout} s, expected {count}")
            await self.wait_for(len(self.at(path)) + 1, path, deadline - time.monotonic())
        return self.entities(path)[:count]

    async def wait_for(self, count: int, path: str = "notify",
                       timeout: float = 5.0) -> list[Received]:
        """The first ``count`` notifications at ``path``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{len(self.at(path))} notifications at /{path} after {timeout} s, "
                    f"expected {count}: {self.bodies(path)}"
                )
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)
        return self.at(path)[:count]
