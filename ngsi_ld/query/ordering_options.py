"""The ordering a request asks for (ETSI GS CIM 009 clause 4.23, 5.2.43 OrderingParams).

:func:`ordering_of` reads the URI parameters of a GET (``orderBy``,
``orderFrom``, ``orderGeometry``, ``collation``), :func:`ordering_of_body` the
``ordering`` member of a POST query; both expand the names with the request's
@context.  Sorting itself is :mod:`ngsi_ld.query.ordering`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.params import Params
from ngsi_ld.query.collation import parse_collation
from ngsi_ld.query.ordering import Ordering, parse_ordering, resolve_ordering

__all__ = ["ordering_of", "ordering_of_body"]


def _collation(tag: Any) -> str | None:
    if tag is None:
        return None
    if not isinstance(tag, str):
        raise BadRequestData("collation must be a string (an IETF RFC 6067 language tag)")
    parse_collation(tag)  # an unusable tag is refused before any work
    return tag


# 4.23 and Table 6.4.3.2-1: orderBy, orderFrom, orderGeometry, collation
def ordering_of(params: Params | Mapping[str, str], ctx: ActiveContext) -> Ordering | None:
    """The ordering a GET asks for (names expanded), or None."""
    collation = _collation(params.get("collation"))
    order_by = params.get("orderBy")
    if order_by is None:
        if "orderFrom" in params or "orderGeometry" in params:
            raise BadRequestData("orderFrom and orderGeometry need orderBy")
        return None
    ordering = parse_ordering(
        order_by, params.get("orderFrom"), params.get("orderGeometry"), collation
    )
    return resolve_ordering(ordering, ctx.expand_term)


# 5.2.43 OrderingParams
def ordering_of_body(member: Any, ctx: ActiveContext) -> Ordering | None:
    """The ``ordering`` member of a POST query (names expanded), or None."""
    if member is None:
        return None
    if not isinstance(member, dict):
        raise BadRequestData("ordering must be an OrderingParams object")
    unknown = set(member) - {"orderBy", "coordinates", "geometry", "collation"}
    if unknown:
        raise BadRequestData(f"unknown OrderingParams member(s): {', '.join(sorted(unknown))}")
    collation = _collation(member.get("collation"))
    order_by, coordinates = member.get("orderBy"), member.get("coordinates")
    geometry = member.get("geometry")
    if geometry is not None and not isinstance(geometry, str):
        raise BadRequestData("ordering geometry must be a GeoJSON geometry type name")
    if coordinates is not None and not isinstance(coordinates, list):
        raise BadRequestData("ordering coordinates must be a JSON array")
    if order_by is None:
        return None
    if isinstance(order_by, str):
        order_by = [order_by]
    if not isinstance(order_by, list) or not all(isinstance(o, str) for o in order_by):
        raise BadRequestData("ordering orderBy must be an array of strings")
    ordering = parse_ordering(order_by, coordinates, geometry, collation)
    return resolve_ordering(ordering, ctx.expand_term)
