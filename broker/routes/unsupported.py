"""The parts of the NGSI-LD API (v1.8.1 OpenAPI) this broker does not implement yet.

Each of their operations answers 501 with an ``OperationNotSupported``
ProblemDetails naming the part, so a client (or a conformance suite) can tell
"not implemented here" from "no such resource" (404) or a mistyped path.
An implemented operation replaces its line here: :func:`setup` skips every
path and method already routed.
"""

from __future__ import annotations

from aiohttp import web

from broker.web import Handler, add_route
from ngsi_ld.errors import NotImplementedOperation

PREFIX = "/ngsi-ld/v1"

#: part of the API -> its operations (method, path under /ngsi-ld/v1)
PARTS: dict[str, tuple[tuple[str, str], ...]] = {
}


def _refusal(part: str) -> Handler:
    async def not_implemented(request: web.Request) -> web.StreamResponse:
        raise NotImplementedOperation(f"{request.method} {request.path} belongs to {part}, "
                                      "which this broker does not implement")

    return not_implemented


def setup(app: web.Application) -> None:
    """Route every operation of :data:`PARTS` that no other module routed to a 501."""
    for part, operations in PARTS.items():
        handler = _refusal(part)
        for method, path in operations:
            if not _routed(app, method, PREFIX + path):
                add_route(app, method, PREFIX + path, handler)


def _routed(app: web.Application, method: str, path: str) -> bool:
    return any(
        route.method == method and route.resource is not None
        and route.resource.canonical == path
        for route in app.router.routes()
    )


__all__ = ["PARTS", "setup"]
