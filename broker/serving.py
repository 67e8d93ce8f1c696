"""Serving the application on a TCP port, with a cap on open connections.

aiohttp's ``web.run_app`` accepts every connection it is offered: 1,100 slow
uploads held 1,120 file descriptors.  :func:`serve` runs the same runner on a
:class:`CappedSite`, which answers a connection beyond ``--max-connections``
with ``503`` and a ProblemDetails body and closes it at once, before any
request is parsed; what the broker holds open is then bounded (with the body
and idle time-outs, for how long).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import cast

import orjson
from aiohttp import web

_uvloop: ModuleType | None
try:
    import uvloop as _uvloop
except ImportError:  # not built for every platform (Windows): asyncio's loop then
    _uvloop = None

__all__ = ["CappedSite", "new_loop", "serve"]

log = logging.getLogger("broker")

_BUSY_BODY = orjson.dumps({
    "type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",  # no NGSI-LD type fits better
    "title": "Service Unavailable",
    "status": 503,
    "detail": "the broker has reached its limit of open connections; retry later",
})
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
         b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
         % len(_BUSY_BODY)) + _BUSY_BODY


class _Busy(asyncio.Protocol):
    """A connection over the cap: one 503, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport: uvloop's implement asyncio.Transport without subclassing it
        stream = cast(asyncio.Transport, transport)
        stream.write(_BUSY)
        stream.close()


class CappedSite(web.TCPSite):
    """A TCP site that serves at most ``limit`` connections at a time."""

    __slots__ = ("_limit", "_on_refused")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, limit: int,
                 reuse_port: bool = False,
                 on_refused: Callable[[], None] | None = None) -> None:
        super().__init__(runner, host, port, reuse_port=reuse_port)
        self._limit = limit
        self._on_refused = on_refused

    async def start(self) -> None:
        self._runner._reg_site(self)
        server = self._runner.server
        assert server is not None
        limit, refused = self._limit, self._on_refused

        def protocol() -> asyncio.BaseProtocol:
            # server.connections: the handlers of the connections open now
            if len(server.connections) >= limit:
                if refused is not None:
                    refused()
                return _Busy()
            return server()

        self._server = await asyncio.get_running_loop().create_server(
            protocol, self._host, self._port, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]


def new_loop(kind: str = "uvloop") -> asyncio.AbstractEventLoop:
    """A new event loop of ``kind`` (``--event-loop``): ``uvloop`` where it is installed,
    else (and for ``asyncio``) asyncio's own.

    uvloop's transports, callbacks and polling are libuv's and C: measured on the
    single writes (issue 19, benchmarks/README.md), its event loop spends about a
    tenth less CPU a request than asyncio's selector loop.
    """
    if kind == "uvloop" and _uvloop is not None:
        loop: asyncio.AbstractEventLoop = _uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def serve(app: web.Application, host: str, port: int, *, max_connections: int,
          idle_timeout: float, reuse_port: bool = False, event_loop: str = "uvloop",
          on_refused: Callable[[], None] | None = None) -> None:
    """Serve ``app`` until SIGINT or SIGTERM (as ``web.run_app`` does), connections capped.

    ``idle_timeout``: seconds a keep-alive connection may wait for its next request.
    ``event_loop``: the loop's kind (:func:`new_loop`).  OSError (port in use...) is
    raised to the caller.
    """
    loop = new_loop(event_loop)
    asyncio.set_event_loop(loop)
    runner = web.AppRunner(app, handle_signals=True, access_log=None,
                           keepalive_timeout=idle_timeout)

    async def main() -> None:
        await runner.setup()
        site = CappedSite(runner, host, port, limit=max_connections, reuse_port=reuse_port,
                          on_refused=on_refused)
        await site.start()
        while True:
            await asyncio.sleep(3600)

    task = loop.create_task(main())
    try:
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
        loop.run_until_complete(runner.cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
