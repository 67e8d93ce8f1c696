"""Geo-queries (clause 4.10) as MongoDB geo operators over the ``geo`` field of entities.

The operator only narrows down the candidates: MongoDB computes on the sphere,
NGSI-LD on the plane of longitudes and latitudes (GeoJSON), so the backend
always checks the exact relation afterwards with the in-memory evaluator.

=============  ================================================================
near           ``$nearSphere`` with ``$maxDistance`` / ``$minDistance`` (widened) from a
               Point; from another geometry, every entity with the property
within         ``$geoWithin`` for a (Multi)Polygon, else ``$geoIntersects``
intersects     ``$geoIntersects``
overlaps       ``$geoIntersects`` (overlapping shapes intersect)
contains       ``$geoIntersects`` (no MongoDB operator; a container intersects)
equals         ``$geoIntersects`` (no MongoDB operator; equal shapes intersect)
disjoint       ``$not`` of ``$geoIntersects``, on entities that have the property
=============  ================================================================

A query polygon whose rings cross (GeoJSON allows it, MongoDB does not) selects
every entity with the property too.
"""

from __future__ import annotations

from typing import Any

from ngsi_ld.query import GeoQuery

from .keys import encode_key

#: MongoDB's distance (sphere of 6378.1 km) against the evaluator's (6371.0088 km), plus
#: the evaluator's approximation for shapes (under 1 %): the margin keeps a superset
_NEAR_MARGIN = 1.02


# 4.10 Geo-query language
def geo_filter(query: GeoQuery) -> dict[str, Any]:
    """The MongoDB geo operator over ``geo.<attr>``: a superset the post-filter refines."""
    path = "geo." + encode_key(query.geoproperty)
    geometry = {"type": query.geometry, "coordinates": _lists(query.coordinates)}
    if not query.shape.is_valid or (query.georel == "near" and query.geometry != "Point"):
        # MongoDB refuses polygons whose rings cross, and measures $nearSphere from a
        # point only: every entity with the property is a candidate
        return {path: {"$exists": True}}
    if query.georel == "near":
        near: dict[str, Any] = {"$geometry": geometry}
        if query.max_distance is not None:
            near["$maxDistance"] = query.max_distance * _NEAR_MARGIN + 1.0
        if query.min_distance is not None:
            near["$minDistance"] = query.min_distance / _NEAR_MARGIN
        return {path: {"$nearSphere": near}}
    if query.georel == "within" and query.geometry in ("Polygon", "MultiPolygon"):
        return {path: {"$geoWithin": {"$geometry": geometry}}}
    intersects = {"$geoIntersects": {"$geometry": geometry}}
    if query.georel == "disjoint":
        return {path: {"$exists": True, "$not": intersects}}
    return {path: intersects}


def _lists(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


__all__ = ["geo_filter"]
