"""The aiohttp side of every route: registering it, reading a request, writing a reply.

Route modules (``broker.routes``) are thin adapters: :func:`call_of` takes
the plain values an operation needs from the request (query parameters,
headers), the route reads the body (``broker.http.read_body``) and the path
ids, calls the service (``broker.service``), and :func:`response_of` writes the
:class:`~broker.service.Reply` it answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

from broker.http import (
    ACCEPT,
    FIWARE_SERVICE,
    LINK,
    PREFER,
    SNAPSHOT,
    TENANT,
    fresh_asked,
    joined,
)
from broker.preconditions import checked, options
from broker.service import Call, Reply
from ngsi_ld import snapshots

__all__ = ["AROUND", "CALL", "WARNING", "Handler", "Wrapper", "add_route", "add_warnings", "around",
           "call_of", "response_of", "twins_last"]

#: where a request keeps its Call (the edge middleware adds its warnings to error answers)
CALL = web.RequestKey("ngsi_ld.call", Call)
#: 6.3.17
WARNING = "NGSILD-Warning"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Wrapper = Callable[[Handler], Handler]
#: what every route's handler runs inside, outermost first (``create_app`` sets it
#: before routing: the edge, then authentication).  Wrapped handlers rather than
#: aiohttp middlewares, which cost every request a context manager and a coroutine
#: more (issue 19: a sixth of a GET answered from a kept answer)
AROUND = web.AppKey("around_handlers", list[Wrapper])

_RESOURCES = web.AppKey("resources_by_path", dict[str, web.Resource])
#: the trailing-slash twins waiting to be registered (:func:`twins_last`)
_TWINS = web.AppKey("trailing_slash_twins", list[web.Resource])


def call_of(request: web.Request) -> Call:
    """The plain values of ``request`` an operation reads (see :class:`Call`)."""
    headers = request.headers
    prefer = headers.getall(PREFER, None)
    call = request[CALL] = Call(
        params=request.query,
        headers=headers,
        ngsild_tenant=joined(headers, TENANT),
        fiware_service=joined(headers, FIWARE_SERVICE),
        accept=headers.get(ACCEPT),
        link=headers.get(LINK),
        prefer=None if prefer is None else ", ".join(prefer),
        snapshot=headers.get(SNAPSHOT),
        path=request.path,
        # the request target as sent: only answer caches key on it, and building the
        # normalized form (``request.path_qs``) cost more than the rest of the Call
        path_qs=request.raw_path,
        fresh=fresh_asked(headers),
    )
    return call


def response_of(reply: Reply, call: Call | None = None) -> web.Response:
    """The aiohttp response of ``reply``; a read answered from a Snapshot names it (6.3.22)."""
    # no headers: None, not an empty dict aiohttp would copy (every 204 of a write)
    response = web.Response(status=reply.status, body=reply.body,
                            content_type=reply.content_type, headers=reply.headers or None)
    if call is not None and call.snapshot_used is not None and reply.status < 400:
        response.headers[snapshots.HEADER] = call.snapshot_used
    if call is not None:
        add_warnings(response, call)
    return response


def add_warnings(response: web.StreamResponse, call: Call) -> None:
    """One ``NGSILD-Warning`` header per warning of the call (6.3.17), error answers too."""
    for text in call.warnings:
        response.headers.add(WARNING, text)
    call.warnings.clear()


def around(app: web.Application, handler: Handler) -> Handler:
    """``handler`` inside the wrappers of :data:`AROUND` (the edge, authentication)."""
    wrappers: list[Wrapper] = app.get(AROUND, [])
    for wrap in reversed(wrappers):
        handler = wrap(handler)
    return handler


def add_route(
    app: web.Application, method: str, path: str, handler: Handler, operation: str | None = None,
    *, before: Callable[[Handler], Handler] | None = None,
) -> None:
    """Register ``path`` and ``path/``: IoT Agents post with a trailing slash, no redirect.

    ``operation`` names the NGSI-LD operation (``ngsi_ld.parameters``): a query
    parameter it does not define answers 400 InvalidRequest before anything else;
    under /ngsi-ld/v1/ the media type preconditions of 6.3.4 are checked first
    (``broker.preconditions``).  Every resource answers OPTIONS with its methods.
    Every method of one path shares one resource: aiohttp tries the resources
    under a path prefix one by one, so one resource per method made every
    request of /entities/... try some twenty patterns.

    ``before`` wraps the checked handler with what may answer ahead of the
    preconditions: a request they let through once (``broker.service.hot``).
    """
    handler = checked(handler, method, path, operation)
    if before is not None:
        handler = before(handler)
    resources = app.get(_RESOURCES)
    if resources is None:
        resources = app[_RESOURCES] = {}
    for each in (path, path.rstrip("/") + "/"):
        resource = resources.get(each)
        if resource is None:
            resource = resources[each] = _resource(app, each, twin=each != path)
            resource.add_route("OPTIONS", around(app, options))
        resource.add_route(method, around(app, handler))


def _resource(app: web.Application, path: str, *, twin: bool) -> web.Resource:
    """The resource of ``path``, registered now, or (a trailing-slash twin inside
    :func:`twins_last`) when the routes are all added."""
    waiting = app.get(_TWINS)
    if not twin or waiting is None:
        return app.router.add_resource(path)
    resource: web.Resource = (web.DynamicResource(path) if "{" in path or "}" in path
                              else web.PlainResource(path))
    waiting.append(resource)
    return resource


@contextmanager
def twins_last(app: web.Application) -> Iterator[None]:
    """The trailing-slash twins of the routes :func:`add_route` adds inside are
    registered after them all, on leaving.

    aiohttp tries the resources under a path prefix (every /entities/... one) in the
    order they were registered: with each twin right after its path, a PATCH of
    ``/entities/{id}/attrs/{attrId}`` tried six patterns before its own and a GET of
    ``/entities/{id}`` two (issue 19: 1-2 µs a request).  A path ending with a slash
    matches no pattern but its twin's, so the order changes no match.
    """
    waiting = app[_TWINS] = []
    try:
        yield
    finally:
        del app[_TWINS]
        for resource in waiting:
            app.router.register_resource(resource)
