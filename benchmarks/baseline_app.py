"""The baseline: the least an aiohttp server can do for a request.

Every path and method is answered after reading the body; the response has the
size (``X-Bench-Size``, bytes) and status (``X-Bench-Status``) the request asks
for, or the ``--size`` / 200 defaults.  Run on the broker's core, it tells how
much of a scenario's cost is aiohttp itself.  It runs on the same kind of event loop
as the broker it is compared with (``--event-loop``, the broker's option and
default): a ratio then measures the broker's code, not the loop under it.

    python -m benchmarks.baseline_app --port 18100 [--size 0] [--event-loop asyncio]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from functools import lru_cache

from aiohttp import web

from broker.config import EVENT_LOOPS
from broker.serving import new_loop


@lru_cache(maxsize=64)
def payload(size: int) -> bytes:
    """A JSON string literal of exactly ``size`` bytes (empty below 2 bytes)."""
    if size < 2:
        return b" " * max(size, 0)
    return b'"' + b"x" * (size - 2) + b'"'


def _int_header(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.headers.get(name, default))
    except ValueError:
        return default


def make_app(default_size: int = 0) -> web.Application:
    """The baseline application answering every request with a sized body."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        size = _int_header(request, "X-Bench-Size", default_size)
        status = _int_header(request, "X-Bench-Status", 200)
        body = None if status == 204 else payload(size)
        return web.Response(body=body, status=status, content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18100)
    parser.add_argument("--size", type=int, default=0, help="default response body size")
    parser.add_argument("--event-loop", choices=EVENT_LOOPS, default="uvloop",
                        help="the event loop (as the broker's --event-loop)")
    args = parser.parse_args(argv)
    web.run_app(make_app(args.size), host=args.host, port=args.port, print=None,
                access_log=None, loop=new_loop(args.event_loop))


if __name__ == "__main__":
    main()
