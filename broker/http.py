"""HTTP edge: Accept negotiation, Link headers, tenants, bodies, responses.

ETSI GS CIM 009 v1.8 clause 6.3 (HTTP binding): 6.3.4 MIME types, 6.3.5 JSON-LD
@context resolution, 6.3.6 Accept negotiation and the Prefer header, 6.3.14 tenants.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import ClientPayloadError, StreamReader, web
from aiohttp.helpers import parse_content_type
from multidict import CIMultiDictProxy, istr

from ngsi_ld import params, prefer, snapshots
from ngsi_ld.bodies import GEO_JSON, JSON, LD_JSON, MERGE_PATCH, Body, request_context
from ngsi_ld.errors import (
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ngsi_ld.headers import (
    CONTEXT_REL,
    TENANT_HEADERS,
    link_header,
    negotiate,
    no_cache,
    parse_link_context,
    tenant_name,
)
from ngsi_ld.prefer import PREFERENCE_APPLIED, _preferences, parse_prefer
from ngsi_ld.versions import Version

# header names as multidict's istr, shared by the HTTP layer: looked up without
# case-folding them on every request
CONTENT_TYPE = istr("Content-Type")
LINK = istr("Link")
ACCEPT = istr("Accept")
PREFER = istr("Prefer")
TENANT = istr("NGSILD-Tenant")
FIWARE_SERVICE = istr("Fiware-Service")
SNAPSHOT = istr(snapshots.HEADER)
CACHE_CONTROL = istr("Cache-Control")
REQUEST_ID = istr("X-Request-Id")


def media_type(request: web.Request) -> str:
    """The media type of the request's body (lower case, no parameters), as aiohttp's
    ``request.content_type`` gives it: ``application/octet-stream`` without a
    Content-Type header.

    Read through aiohttp's own (cached) parse of the header, without what
    ``content_type`` does besides on the first call of every request (it copies the
    header's parameters into the request: a few microseconds of every write, issue 19).
    """
    raw = request.headers.get(CONTENT_TYPE)
    return "application/octet-stream" if raw is None else parse_content_type(raw)[0]


def prefer_of(request: web.Request) -> str | None:
    """The request's ``Prefer`` preferences as one value (repeated headers joined), or None."""
    values = request.headers.getall("Prefer", None)
    return ", ".join(values) if values else None


def preferences(request: web.Request) -> dict[str, str]:
    """The request's ``Prefer`` preferences (IETF RFC 7240): lower-case name -> value
    ("" without one); parameters are dropped and the first of a repeated name counts."""
    prefer = prefer_of(request)
    return {} if prefer is None else parse_prefer(prefer)


def requested_version(request: web.Request) -> Version | None:
    """The version of a ``Prefer: ngsi-ld=<major.minor>`` preference (6.3.6), or None."""
    if "Prefer" not in request.headers:
        return None
    return prefer.requested_version(prefer_of(request))


def version_applied(request: web.Request) -> dict[str, str]:
    """``Preference-Applied: ngsi-ld=<version>`` for a version preference (5.7.1.4)."""
    if "Prefer" not in request.headers:
        return {}
    return prefer.version_applied(prefer_of(request))


def tenant_of(request: web.Request, multi_tenancy: bool) -> str:
    """The tenant named by NGSILD-Tenant (or its alias Fiware-Service); '' is the default."""
    headers = request.headers
    return tenant_name(joined(headers, "NGSILD-Tenant"), joined(headers, "Fiware-Service"),
                       multi_tenancy)


def fresh_asked(headers: CIMultiDictProxy[str]) -> bool:
    """Whether the request's ``Cache-Control`` (every field line) asks ``no-cache``
    (RFC 9111 5.2.1.4): no kept answer may serve it.  The usual request has no
    ``Cache-Control``: told by one lookup, before any joining."""
    return CACHE_CONTROL in headers and no_cache(joined(headers, CACHE_CONTROL))


def joined(headers: CIMultiDictProxy[str], name: str) -> str | None:
    """The value of header ``name``; a repeated header's values joined with commas (RFC 9110
    5.3), so that ``tenant_name`` sees two tenants named by one header twice."""
    values = headers.getall(name, None)
    if values is None or len(values) == 1:
        return None if values is None else values[0]
    return ", ".join(values)


#: seconds a request body may take to arrive (``--body-timeout``; set by create_app)
BODY_TIMEOUT = web.AppKey("body_timeout", float)


class ClientGone(Exception):
    """The client closed its connection before its request was read: nobody to answer."""


async def _body_bytes(content: StreamReader, max_size: int,
                      timeout: float) -> bytes | bytearray:
    """The whole body, at most ``max_size`` bytes (PayloadTooLarge beyond).

    A body that has not arrived within ``timeout`` seconds answers 408 and the
    connection is closed (a slow upload holds no connection for ever); a client
    that closes its connection meanwhile is :class:`ClientGone`.
    """
    if content.is_eof():
        # Small bodies have all arrived with their headers: take them without awaiting.
        raw: bytes | bytearray = content.read_nowait(-1)
        if len(raw) > max_size:
            raise PayloadTooLarge(f"request body exceeds {max_size} bytes")
        return raw
    raw = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in content.iter_chunked(65536):
                raw += chunk
                if len(raw) > max_size:
                    raise PayloadTooLarge(f"request body exceeds {max_size} bytes")
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text=f"the request body did not arrive within {timeout} s") from None
    except (ConnectionError, ClientPayloadError) as exc:
        raise ClientGone(str(exc) or type(exc).__name__) from None
    return raw


async def read_body(
    request: web.Request,
    max_size: int,
    accept_types: tuple[str, ...] = (JSON, LD_JSON),
    *,
    context_rules: bool = True,
    item_contexts: bool = False,
) -> Body:
    """Read, size-check and parse a JSON body and locate its @context (6.3.5).

    ``context_rules=False`` is for bodies that are contexts themselves (5.13.2).
    ``item_contexts=True`` is for batch operations: when the body is an array,
    the @context rules of each element are the caller's to check, so that one
    element breaking them fails alone (5.6.7.4).
    """
    raw, content_type = _arrived(request, max_size, accept_types)
    if raw is None:  # a body still arriving (the larger ones)
        raw = await _rest(request, max_size)
    return decode_body(request, raw, content_type, context_rules=context_rules,
                       item_contexts=item_contexts)


async def read_bytes(request: web.Request, max_size: int,
                     accept_types: tuple[str, ...] = (JSON, LD_JSON),
                     ) -> tuple[bytes | bytearray, str]:
    """The first half of :func:`read_body`: the body's bytes, its type and size checked,
    and its media type."""
    raw, content_type = _arrived(request, max_size, accept_types)
    if raw is None:
        raw = await _rest(request, max_size)
    return raw, content_type


async def _rest(request: web.Request, max_size: int) -> bytes | bytearray:
    """The bytes of a body that had not all arrived with the headers (:func:`_arrived`)."""
    return await _body_bytes(request.content, max_size, request.app.get(BODY_TIMEOUT, 30.0))


def _arrived(request: web.Request, max_size: int, accept_types: tuple[str, ...],
             ) -> tuple[bytes | bytearray | None, str]:
    """The body's type and size checked; its bytes if they all arrived with the headers
    (small bodies: taken without a coroutine, every write passes here, issue 19), else
    None; and its media type."""
    if not request.body_exists:
        raise InvalidRequest("the request body is empty")
    content_type = media_type(request).lower()
    if content_type not in accept_types:
        raise UnsupportedMediaType(
            f"Content-Type {request.headers.get('Content-Type', '(none)')!r} is not accepted "
            f"here; use {' or '.join(accept_types)}"
        )
    return _sized(request, max_size), content_type


def _sized(request: web.Request, max_size: int) -> bytes | bytearray | None:
    """The body's size checked; its bytes if they all arrived with the headers, else None."""
    length = request.content_length
    if length is not None and length > max_size:
        raise PayloadTooLarge(f"request body of {length} bytes exceeds {max_size}")
    content = request.content
    if not content.is_eof():
        return None
    raw = content.read_nowait(-1)
    if len(raw) > max_size:
        raise PayloadTooLarge(f"request body exceeds {max_size} bytes")
    return raw


def sized_body(request: web.Request, max_size: int) -> bytes | bytearray | None:
    """The bytes of the request's body, its size checked, when they all arrived with the
    headers (read without a coroutine); else None.  No body: InvalidRequest."""
    if not request.body_exists:
        raise InvalidRequest("the request body is empty")
    return _sized(request, max_size)


def typed_body(request: web.Request, max_size: int, content_type: str) -> Body | None:
    """:func:`read_body` of a request whose Content-Type header is ``content_type``, one of
    the types accepted, as it is (no parameters, lower case: not parsed again), when its
    bytes all arrived with the headers (read without a coroutine); else None, and
    :func:`read_typed` reads it."""
    raw = sized_body(request, max_size)
    return None if raw is None else decode_body(request, raw, content_type)


async def read_typed(request: web.Request, max_size: int, content_type: str) -> Body:
    """:func:`typed_body` of a body still arriving too."""
    body = typed_body(request, max_size, content_type)
    if body is None:
        body = decode_body(request, await _rest(request, max_size), content_type)
    return body


def decode_body(request: web.Request, raw: bytes | bytearray, content_type: str, *,
                context_rules: bool = True, item_contexts: bool = False) -> Body:
    """The second half of :func:`read_body`: the bytes :func:`read_bytes` gave parsed, the
    @context located (the arguments as :func:`read_body`'s)."""
    data = decoded(raw)
    if not context_rules:
        return Body(data=data, media_type=content_type, client_context=None, link_context=None)
    link = parse_link_context(request.headers.get(LINK))
    client_context = request_context(data, content_type, link, item_contexts=item_contexts)
    return Body(data=data, media_type=content_type, client_context=client_context,
                link_context=link)


def decoded(raw: bytes | bytearray) -> Any:
    """The JSON value of a request body's bytes; none or not JSON: InvalidRequest."""
    if not raw:
        raise InvalidRequest("the request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


def json_response(
    data: Any,
    status: int = 200,
    content_type: str = JSON,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A response with an orjson body."""
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        content_type=content_type,
        headers=headers,
    )


def flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter (true/false)."""
    return params.flag(request.query, name)


def options(request: web.Request, allowed: frozenset[str]) -> set[str]:
    """The comma-separated ``options`` values, each checked against ``allowed``."""
    return params.options_of(request.query, allowed)


__all__ = [
    "BODY_TIMEOUT",
    "CACHE_CONTROL",
    "CONTEXT_REL",
    "GEO_JSON",
    "JSON",
    "LD_JSON",
    "MERGE_PATCH",
    "PREFERENCE_APPLIED",
    "TENANT_HEADERS",
    "Body",
    "ClientGone",
    "_preferences",
    "decode_body",
    "decoded",
    "flag",
    "fresh_asked",
    "joined",
    "json_response",
    "link_header",
    "media_type",
    "negotiate",
    "options",
    "parse_link_context",
    "parse_prefer",
    "prefer_of",
    "preferences",
    "read_body",
    "read_bytes",
    "read_typed",
    "requested_version",
    "sized_body",
    "tenant_of",
    "typed_body",
    "version_applied",
]
