"""HTTP edge: media types, Accept negotiation, Link headers, tenants, bodies, responses.

ETSI GS CIM 009 v1.8 clause 6.3 (HTTP binding): 6.3.4 MIME types, 6.3.5 JSON-LD
@context resolution, 6.3.6 Accept negotiation and the Prefer header, 6.3.14 tenants.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from aiohttp import StreamReader, web

from ngsi_ld.errors import (
    BadRequestData,
    InvalidRequest,
    NoMultiTenantSupport,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ngsi_ld.versions import Version, conformant, format_version, parse_version

JSON = "application/json"
LD_JSON = "application/ld+json"
GEO_JSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
TENANT_HEADERS = ("NGSILD-Tenant", "Fiware-Service")
PREFERENCE_APPLIED = "Preference-Applied"

# 6.3.5: Link: <url>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"
_LINK_RE = re.compile(r"^\s*<([^>]*)>\s*((?:;\s*[A-Za-z*-]+\s*=\s*(?:\"[^\"]*\"|[^;,\s]+)\s*)*)$")
_PARAM_RE = re.compile(r";\s*([A-Za-z*-]+)\s*=\s*(\"[^\"]*\"|[^;,\s]+)")
_TENANT_RE = re.compile(r"^[A-Za-z0-9_-]{1,50}$")
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def link_header(url: str) -> str:
    """The Link header value that carries a response's @context (6.3.5)."""
    return f'<{url}>; rel="{CONTEXT_REL}"; type="{LD_JSON}"'


def parse_link_context(value: str | None) -> str | None:
    """The @context URL of a Link header, or None when the header has no context link.

    A Link header that is present but cannot be parsed, or whose context link is
    not an absolute http(s) URL, answers 400 BadRequestData (6.3.5).
    """
    if value is None:
        return None
    return _link_context(value)


# Clients send the same Link header with every request; parsing it char by char
# cost about 11 us a request.  Refusals raise, and are not cached.
@lru_cache(maxsize=256)
def _link_context(value: str) -> str | None:
    found: str | None = None
    for part in _split_links(value):
        match = _LINK_RE.match(part)
        if not match:
            raise BadRequestData(f"malformed Link header: {value!r}")
        params = {k.lower(): v.strip('"') for k, v in _PARAM_RE.findall(match.group(2))}
        if params.get("rel") != CONTEXT_REL:
            continue
        if found is not None:
            raise BadRequestData("more than one JSON-LD context in the Link header")
        url = match.group(1).strip()
        if not re.match(r"^https?://[^\s/]+", url):
            raise BadRequestData(
                f"the JSON-LD context in the Link header is not an http(s) URL: {url!r}"
            )
        found = url
    return found


def preferences(request: web.Request) -> dict[str, str]:
    """The request's ``Prefer`` preferences (IETF RFC 7240): lower-case name -> value
    ("" without one); parameters are dropped and the first of a repeated name counts."""
    values = request.headers.getall("Prefer", None)
    if not values:
        return {}
    return parse_prefer(", ".join(values))


def parse_prefer(value: str) -> dict[str, str]:
    """The preferences of a ``Prefer`` header value, as :func:`preferences` reads them."""
    return dict(_preferences(value))


@lru_cache(maxsize=64)
def _preferences(value: str) -> tuple[tuple[str, str], ...]:
    # one linear pass: preferences split at "," and parameters at ";" outside quotes
    found: dict[str, str] = {}
    for preference in _split_outside_quotes(value, ","):
        head = _split_outside_quotes(preference, ";")[0]
        name, eq, word = head.partition("=")
        name, word = name.strip(), word.strip()
        if not _TOKEN_RE.fullmatch(name):
            continue  # not RFC 7240: a preference that cannot be read is ignored
        if len(word) >= 2 and word[0] == word[-1] == '"':
            word = re.sub(r"\\(.)", r"\1", word[1:-1])
        found.setdefault(name.lower(), word if eq else "")
    return tuple(found.items())


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for i, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return parts


def requested_version(request: web.Request) -> Version | None:
    """The version of a ``Prefer: ngsi-ld=<major.minor>`` preference (6.3.6), or None."""
    if "Prefer" not in request.headers:
        return None
    value = preferences(request).get("ngsi-ld")
    return None if value is None else parse_version(value)


def version_applied(request: web.Request) -> dict[str, str]:
    """``Preference-Applied: ngsi-ld=<version>`` for a version preference (5.7.1.4): the
    version the payload conforms to; no header without one."""
    version = requested_version(request)
    if version is None:
        return {}
    return {PREFERENCE_APPLIED: f"ngsi-ld={format_version(conformant(version))}"}


def _split_links(value: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = False
    for char in value:
        if char == "<":
            depth = True
        elif char == ">":
            depth = False
        if char == "," and not depth:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header with their weights (RFC 9110 12.5.1).

    A weight that is not a number is ignored (the range keeps the default 1):
    it is not one of the HTTP processing rules, so it decides nothing.
    """
    ranges = []
    for item in accept.split(","):
        pieces = [p.strip() for p in item.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        quality = 1.0
        for param in pieces[1:]:
            if param[:2].lower() == "q=":
                with contextlib.suppress(ValueError):
                    quality = min(max(float(param[2:]), 0.0), 1.0)
        ranges.append((media, quality))
    return ranges


def _weight(media_type: str, ranges: list[tuple[str, float]]) -> float:
    """The weight of ``media_type``: that of the most specific range matching it
    (RFC 9110 12.5.1), so ``application/json;q=0, */*`` refuses JSON; 0 if none does."""
    main = media_type.split("/", 1)[0] + "/*"
    best_rank, weight = 0, 0.0
    for media, quality in ranges:
        rank = 3 if media == media_type else 2 if media == main else 1 if media == "*/*" else 0
        if rank > best_rank or (rank == best_rank and rank and quality > weight):
            best_rank, weight = rank, quality
    return weight


# Clients repeat the same Accept header: the choice is remembered per header and offer.
@lru_cache(maxsize=256)
def _negotiated(accept: str, offered: tuple[str, ...]) -> str | None:
    ranges = _media_ranges(accept)
    chosen, best = None, 0.0
    for candidate in offered:  # in the order of 6.3.4: a tie keeps the earlier one
        weight = _weight(candidate, ranges)
        if weight > best:
            chosen, best = candidate, weight
    return chosen


def negotiate(accept: str | None, offered: tuple[str, ...]) -> str:
    """The offered media type the Accept header selects (6.3.4); 406 if none is acceptable.

    ``offered`` is in the order of the list of clause 6.3.4 (application/json,
    application/ld+json, application/geo+json): when the header accepts several
    of them with the same weight, the first one of that list is selected,
    whatever the order the client wrote them in.  Weights follow RFC 9110
    12.5.1: each type takes the weight of the most specific range that matches
    it, and weight 0 means "not acceptable".  No Accept header means the first.
    """
    if not accept or not accept.strip():
        return offered[0]
    chosen = _negotiated(accept, offered)
    if chosen is None:
        raise NotAcceptable(
            f"none of the media types in Accept ({accept}) is offered here: {', '.join(offered)}"
        )
    return chosen


def tenant_of(request: web.Request, multi_tenancy: bool) -> str:
    """The tenant named by NGSILD-Tenant (or its alias Fiware-Service); '' is the default."""
    for header in TENANT_HEADERS:
        value = request.headers.get(header)
        if value is not None and value.strip():
            if not multi_tenancy:
                raise NoMultiTenantSupport("this broker runs without multi-tenancy support")
            tenant = value.strip().lower() if header == "Fiware-Service" else value.strip()
            if not _TENANT_RE.match(tenant):
                raise BadRequestData(
                    f"invalid tenant {tenant!r}: 1 to 50 letters, digits, '_' or '-'"
                )
            return tenant
    return ""


@dataclass(slots=True)
class Body:
    """A parsed request body and where its @context comes from."""

    data: Any
    media_type: str  # JSON, LD_JSON or MERGE_PATCH
    context: Any  # the user context value: a URL, a dict, a list, or None (core only)
    link_context: str | None


async def _body_bytes(content: StreamReader, max_size: int) -> bytes | bytearray:
    """The whole body, at most ``max_size`` bytes (PayloadTooLarge beyond)."""
    if content.is_eof():
        # Small bodies have all arrived with their headers: take them without awaiting.
        raw: bytes | bytearray = content.read_nowait(-1)
        if len(raw) > max_size:
            raise PayloadTooLarge(f"request body exceeds {max_size} bytes")
        return raw
    raw = bytearray()
    async for chunk in content.iter_chunked(65536):
        raw += chunk
        if len(raw) > max_size:
            raise PayloadTooLarge(f"request body exceeds {max_size} bytes")
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
    if not request.body_exists:
        raise InvalidRequest("the request body is empty")
    content_type = request.content_type.lower()
    if content_type not in accept_types:
        raise UnsupportedMediaType(
            f"Content-Type {request.headers.get('Content-Type', '(none)')!r} is not accepted "
            f"here; use {' or '.join(accept_types)}"
        )
    if request.content_length is not None and request.content_length > max_size:
        raise PayloadTooLarge(f"request body of {request.content_length} bytes exceeds {max_size}")
    raw = await _body_bytes(request.content, max_size)
    if not raw:
        raise InvalidRequest("the request body is empty")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not context_rules:
        return Body(data=data, media_type=content_type, context=None, link_context=None)
    link = parse_link_context(request.headers.get("Link"))
    context: Any = None
    if content_type == LD_JSON:
        if link is not None:
            raise BadRequestData(
                "a Link header with a JSON-LD context is not allowed with "
                "Content-Type application/ld+json: put @context in the body"
            )
        if isinstance(data, dict):
            if "@context" not in data:
                raise BadRequestData(
                    "Content-Type application/ld+json requires @context in the body"
                )
            context = data.pop("@context")
        elif isinstance(data, list) and not item_contexts:
            for item in data:
                if not isinstance(item, dict) or "@context" not in item:
                    raise BadRequestData(
                        "Content-Type application/ld+json requires @context "
                        "in every element of the body"
                    )
    else:
        if isinstance(data, dict) and "@context" in data:
            raise BadRequestData(
                "@context in the body requires Content-Type application/ld+json; "
                "with application/json give the context in a Link header"
            )
        if (
            isinstance(data, list)
            and not item_contexts
            and any(isinstance(i, dict) and "@context" in i for i in data)
        ):
            raise BadRequestData("@context in the body requires Content-Type application/ld+json")
        context = link
    return Body(data=data, media_type=content_type, context=context, link_context=link)


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
    value = request.query.get(name)
    if value is None:
        return False
    if value in ("true", "false"):
        return value == "true"
    raise BadRequestData(f"query parameter {name} must be true or false, not {value!r}")


def options(request: web.Request, allowed: frozenset[str]) -> set[str]:
    """The comma-separated ``options`` values, each checked against ``allowed``."""
    found: set[str] = set()
    for raw in request.query.getall("options", []):
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            if item not in allowed:
                raise BadRequestData(
                    f"unknown option {item!r}; allowed here: {', '.join(sorted(allowed))}"
                )
            found.add(item)
    return found
