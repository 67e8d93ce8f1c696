"""Request headers of the HTTP binding as plain values (ETSI GS CIM 009 clause 6.3).

6.3.4 Accept negotiation (:func:`negotiate`), 6.3.5 the @context Link header
(:func:`parse_link_context`, :func:`link_header`) and 6.3.14 tenants
(:func:`tenant_name`): each reads header values, none needs a request object.
Beside them, HTTP's own ``Cache-Control`` of a request (:func:`no_cache`, RFC 9111).
"""

from __future__ import annotations

import contextlib
import re
from functools import lru_cache

from ngsi_ld.bodies import LD_JSON
from ngsi_ld.errors import BadRequestData, NoMultiTenantSupport, NotAcceptable

__all__ = [
    "CONTEXT_REL", "TENANT_HEADERS", "link_header", "negotiate", "no_cache",
    "parse_link_context", "tenant_name",
]

CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
TENANT_HEADERS = ("NGSILD-Tenant", "Fiware-Service")
_TENANT_RE = re.compile(r"^[A-Za-z0-9_-]{1,50}$")

# 6.3.5: Link: <url>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"
_LINK_RE = re.compile(r"^\s*<([^>]*)>\s*((?:;\s*[A-Za-z*-]+\s*=\s*(?:\"[^\"]*\"|[^;,\s]+)\s*)*)$")
_PARAM_RE = re.compile(r";\s*([A-Za-z*-]+)\s*=\s*(\"[^\"]*\"|[^;,\s]+)")


# RFC 9111 5.2.1.4: the request directive no-cache, "the client prefers that a stored
# response not be used to satisfy the request without successful validation"
def no_cache(value: str | None) -> bool:
    """True when a request's ``Cache-Control`` value (its field lines joined by ``,``)
    holds the ``no-cache`` directive; directive names are case-insensitive (RFC 9111
    5.2) and an argument is ignored, as a request's no-cache has none."""
    if not value:
        return False
    for directive in value.split(","):
        name = directive.split("=", 1)[0].strip()
        if name.lower() == "no-cache":
            return True
    return False


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


def tenant_name(ngsild_tenant: str | None, fiware_service: str | None,
                multi_tenancy: bool) -> str:
    """The tenant named by NGSILD-Tenant or its alias Fiware-Service; '' is the default.

    6.3.14 names the header, not how names compare.  Here they compare without
    regard to case, whichever header carries them: a name is lower-cased, as
    Orion and Orion-LD do with Fiware-Service, so ``NGSILD-Tenant: TenC`` and
    ``Fiware-Service: tenc`` are one tenant.  Every value given must name the
    same tenant: the two headers, or one header repeated (a value holding a
    comma is a repeated header joined, RFC 9110 5.3), naming two is 400
    BadRequestData rather than one of them chosen silently.
    """
    names: set[str] = set()
    for value in (ngsild_tenant, fiware_service):
        if value is not None:
            names.update(part.strip().lower() for part in value.split(","))
    names.discard("")
    if not names:
        return ""
    if not multi_tenancy:
        raise NoMultiTenantSupport("this broker runs without multi-tenancy support")
    if len(names) > 1:
        raise BadRequestData(
            f"the tenant headers name different tenants: {', '.join(sorted(names))}")
    tenant = names.pop()
    if not _TENANT_RE.match(tenant):
        raise BadRequestData(f"invalid tenant {tenant!r}: 1 to 50 letters, digits, '_' or '-'")
    return tenant
