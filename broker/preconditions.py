"""HTTP preconditions every NGSI-LD operation checks before it runs (clause 6.3.4).

ETSI GS CIM 009 v1.9.1 clause 6.3.4 lists what a request has to satisfy before
the operation itself is considered, so that the answer does not depend on the
data the request targets (an unacceptable Accept header is 406 whether or not
the subscription exists):

- POST, PATCH and PUT carry a ``Content-Length`` header: without one (a chunked
  body included) the answer is a bare 411, no body (6.3.2, 6.3.4);
- POST, PATCH and PUT bodies are ``application/json`` or ``application/ld+json``,
  and a PATCH may also be ``application/merge-patch+json``: else 415;
- the ``Accept`` header of an operation that answers with a body selects one of
  the representations it offers (JSON, JSON-LD, and GeoJSON for entities): else
  406;
- the URI query parameters are those the operation defines (``ngsi_ld.parameters``):
  else 400 InvalidRequest.

OPTIONS on any resource answers 204 with ``Allow`` (and ``Accept-Patch`` where
PATCH is allowed), as the HTTP binding of v1.9.1 describes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from broker.http import GEO_JSON, JSON, LD_JSON, MERGE_PATCH, media_type, negotiate
from ngsi_ld.errors import UnsupportedMediaType
from ngsi_ld.parameters import OPERATIONS, check_parameters

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_PREFIX = "/ngsi-ld/v1/"
BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})
BODY_MEDIA = (JSON, LD_JSON)
PATCH_MEDIA = (JSON, LD_JSON, MERGE_PATCH)
#: operations that answer entities, which GeoJSON may represent (6.3.15)
GEO_OPERATIONS = frozenset({"retrieveEntity", "queryEntities", "queryEntitiesPost"})
#: POST operations that answer with a body the Accept header chooses
ANSWERING_POSTS = frozenset({"queryEntitiesPost"})
#: Accept values that accept JSON outright: no need to parse them
_PLAIN_ACCEPTS = frozenset({"", "*/*", JSON, LD_JSON, f"{JSON}, */*", f"{LD_JSON}, */*"})


def length_required(request: web.Request) -> web.Response | None:
    """A bare 411 for a POST, PATCH or PUT without Content-Length (6.3.4), else None.

    6.3.4 makes the header a precondition with no exemption for chunked
    transfer (Orion-LD answers the same), and asks for "just a 411 HTTP status
    code (without any payload body)".
    """
    if (
        request.method in BODY_METHODS
        and "Content-Length" not in request.headers
        and request.path.startswith(API_PREFIX)
    ):
        return web.Response(status=411)
    return None


def offered_media(operation: str | None) -> tuple[str, ...]:
    """The representations an operation answers with, in the order of 6.3.4."""
    return (JSON, LD_JSON, GEO_JSON) if operation in GEO_OPERATIONS else (JSON, LD_JSON)


def checked(handler: Handler, method: str, path: str, operation: str | None) -> Handler:
    """``handler`` behind the preconditions of its operation (see the module docstring).

    Paths outside ``/ngsi-ld/v1/`` (``/version``, ``/metrics``...) only get the
    query parameter check, and only when ``operation`` names one.
    """
    allowed = OPERATIONS[operation] if operation is not None else None
    in_api = path.startswith(API_PREFIX)
    body_media = None
    if in_api and method in BODY_METHODS:
        body_media = PATCH_MEDIA if method == "PATCH" else BODY_MEDIA
    accept_media = None
    if in_api and (method == "GET" or operation in ANSWERING_POSTS):
        accept_media = offered_media(operation)
    if allowed is None and body_media is None and accept_media is None:
        return handler

    async def with_preconditions(request: web.Request) -> web.StreamResponse:
        if body_media is not None and media_type(request) not in body_media:
            raise UnsupportedMediaType(
                f"Content-Type {request.headers.get('Content-Type', '(none)')!r} is not "
                f"accepted here; use {' or '.join(body_media)}"
            )
        if accept_media is not None:
            accept = request.headers.get("Accept")
            if accept is not None and accept not in _PLAIN_ACCEPTS:
                negotiate(accept, accept_media)  # 406 when none is acceptable
        if allowed is not None:
            query = request.query
            if query and not allowed.issuperset(query.keys()):
                check_parameters(operation or "", query.keys())
        return await handler(request)

    return with_preconditions


async def options(request: web.Request) -> web.Response:
    """OPTIONS on a resource: 204 with the methods it allows (RFC 9110 9.3.7)."""
    resource = request.match_info.route.resource
    methods = sorted({route.method for route in resource} if resource is not None else set())
    headers = {"Allow": ", ".join(methods)}
    if "PATCH" in methods:  # RFC 5789 3.1
        headers["Accept-Patch"] = ", ".join(PATCH_MEDIA)
    return web.Response(status=204, headers=headers)


__all__ = ["checked", "length_required", "offered_media", "options"]
