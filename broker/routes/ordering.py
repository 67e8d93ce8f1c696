"""Entity ordering over HTTP (clause 4.23): the parameters of a GET, the ``ordering``
member of a POST query (OrderingParams, 5.2.43), and the ordered page.

Ordering needs every matching entity before the first page can be cut, so an
ordered query reads all its matches (at most :data:`MAX_ORDERED`, more answers
403 TooManyResults), sorts them with :func:`ngsi_ld.query.ordering.order_entities`
and pages the result.  A query without ordering never comes here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from broker.collation import string_key
from ngsi_ld.errors import BadRequestData, TooManyResults
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.query import EntityQuery
from ngsi_ld.query.collation import parse_collation
from ngsi_ld.query.ordering import Ordering, order_entities, parse_ordering, resolve_ordering
from storage.base import Entity, Store

#: the most entities one ordered query may sort
MAX_ORDERED = 100_000
#: sorting more entities than this runs in a worker thread
_SORT_INLINE = 500


def _collation(tag: Any) -> str | None:
    if tag is None:
        return None
    if not isinstance(tag, str):
        raise BadRequestData("collation must be a string (an IETF RFC 6067 language tag)")
    parse_collation(tag)  # an unusable tag is refused before any work
    return tag


# 4.23 and Table 6.4.3.2-1: orderBy, orderFrom, orderGeometry, collation
def ordering_of(params: Mapping[str, str], ctx: ActiveContext) -> Ordering | None:
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


async def ordered_page(
    store: Store,
    tenant: str,
    queries: Sequence[EntityQuery],
    ordering: Ordering,
    offset: int,
    limit: int,
) -> tuple[list[Entity], int]:
    """One page of the entities the queries select (OR-ed), in ``ordering``; and their total."""
    merged: dict[str, Entity] = {}
    for query in queries:
        found, _ = await store.query_entities(tenant, query, limit=MAX_ORDERED + 1)
        merged.update((entity["id"], entity) for entity in found)
        if len(merged) > MAX_ORDERED:
            raise TooManyResults(
                f"an ordered query may sort at most {MAX_ORDERED} entities; narrow it down"
            )
    key = await string_key(ordering.collation)
    entities = list(merged.values())
    if len(entities) > _SORT_INLINE:
        ordered = await asyncio.to_thread(order_entities, entities, ordering, key)
    else:
        ordered = order_entities(entities, ordering, key)
    return ordered[offset:offset + limit], len(ordered)


__all__ = ["MAX_ORDERED", "ordered_page", "ordering_of", "ordering_of_body"]
