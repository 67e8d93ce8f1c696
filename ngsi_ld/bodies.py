"""Where a request's @context is, and where an answer's goes (ETSI GS CIM 009 6.3.5, 6.3.6).

A request body is JSON; its @context comes from one place only (6.3.5):

- ``application/ld+json``: the ``@context`` member of the body (of every element
  of an array body), and no context Link header;
- ``application/json`` (and merge-patch): the Link header, and no ``@context``
  in the body.

A batch checks the rules element by element (``item_contexts``), so that one
element breaking them fails alone (5.6.7.4).  An answer carries its @context
in the body for JSON-LD, and for GeoJSON unless the client prefers
``body=json`` (6.3.6); else in a Link header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.prefer import prefers_json_body

__all__ = [
    "GEO_JSON", "JSON", "LD_JSON", "MERGE_PATCH", "Body", "context_in_body", "item_context",
    "request_context",
]

JSON = "application/json"
LD_JSON = "application/ld+json"
GEO_JSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(slots=True)
class Body:
    """A decoded request body and where its @context comes from."""

    data: Any
    media_type: str  # JSON, LD_JSON or MERGE_PATCH
    #: the client's @context value: a URL, an object, an array, or None (core only)
    client_context: Any
    #: the URL of the Link header's context link, if any
    link_context: str | None = None


def request_context(data: Any, media_type: str, link_context: str | None, *,
                    item_contexts: bool = False) -> Any:
    """The client's @context value of a decoded body (6.3.5), removed from an object body.

    ``link_context`` is the URL of the Link header's context link, if any.  The
    value returned is what the client wrote: a URL, an object, an array, or
    None (the core context only).
    """
    if media_type == LD_JSON:
        if link_context is not None:
            raise BadRequestData(
                "a Link header with a JSON-LD context is not allowed with "
                "Content-Type application/ld+json: put @context in the body"
            )
        if isinstance(data, dict):
            if "@context" not in data:
                raise BadRequestData(
                    "Content-Type application/ld+json requires @context in the body"
                )
            return data.pop("@context")
        if isinstance(data, list) and not item_contexts:
            for item in data:
                if not isinstance(item, dict) or "@context" not in item:
                    raise BadRequestData(
                        "Content-Type application/ld+json requires @context "
                        "in every element of the body"
                    )
        return None
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
    return link_context


def item_context(media_type: str, item: Any) -> tuple[bool, Any]:
    """The @context rules of one element of a batch body (6.3.5 element by element).

    ``(True, value)`` when the element carries its own @context (JSON-LD),
    ``(False, None)`` when it shares the Link header's.
    """
    if media_type == LD_JSON:
        if not isinstance(item, dict) or "@context" not in item:
            raise BadRequestData("Content-Type application/ld+json requires @context in every "
                                 "element of the body")
        return True, item["@context"]
    if isinstance(item, dict) and "@context" in item:
        raise BadRequestData("@context in the body requires Content-Type application/ld+json; "
                             "with application/json give the context in a Link header")
    return False, None


def context_in_body(media_type: str, prefer: str | None) -> bool:
    """Whether an answer carries its @context in the body rather than a Link header.

    6.3.5: JSON-LD always does, JSON never.  6.3.6: GeoJSON does too, at the top
    level of the Feature or FeatureCollection, unless the request's ``Prefer``
    header asks for ``body=json`` (RFC 7240), which moves it to the Link header.
    """
    if media_type == LD_JSON:
        return True
    return media_type == GEO_JSON and not prefers_json_body(prefer)
