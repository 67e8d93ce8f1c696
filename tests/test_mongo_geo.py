"""Geo-queries as MongoDB geo operators (storage/mongo/geo.py), pinned."""

from __future__ import annotations

from typing import Any

import pytest

from ngsi_ld.query import EntityQuery, TypeName, parse_geo_query
from storage.mongo.filters import compile_query

T = "https://example.org/T"
LOC = "https://example.org/loc"
GEO = "geo.https://example%2Eorg/loc"


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "expected"),
    [
        (
            "near;maxDistance==1000",
            "Point",
            [1, 2],
            {
                "$nearSphere": {
                    "$geometry": {"type": "Point", "coordinates": [1, 2]},
                    "$maxDistance": 1021.0,
                }
            },
        ),
        (
            "near;minDistance==102",
            "Point",
            [1, 2],
            {
                "$nearSphere": {
                    "$geometry": {"type": "Point", "coordinates": [1, 2]},
                    "$minDistance": 100.0,
                }
            },
        ),
        (
            "within",
            "Polygon",
            [[[0, 0], [1, 0], [1, 1], [0, 0]]],
            {
                "$geoWithin": {
                    "$geometry": {
                        "type": "Polygon",
                        "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]],
                    }
                }
            },
        ),
        (
            "intersects",
            "LineString",
            [[0, 0], [1, 1]],
            {
                "$geoIntersects": {
                    "$geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
                }
            },
        ),
        (
            "disjoint",
            "Point",
            [1, 1],
            {
                "$exists": True,
                "$not": {"$geoIntersects": {"$geometry": {"type": "Point", "coordinates": [1, 1]}}},
            },
        ),
        (
            "equals",
            "Point",
            [1, 1],
            {"$geoIntersects": {"$geometry": {"type": "Point", "coordinates": [1, 1]}}},
        ),
        (
            "contains",
            "Point",
            [1, 1],
            {"$geoIntersects": {"$geometry": {"type": "Point", "coordinates": [1, 1]}}},
        ),
    ],
)
def test_geo_operators(georel: str, geometry: str, coordinates: Any, expected: Any) -> None:
    geo = parse_geo_query(georel, geometry, coordinates, LOC)
    compiled = compile_query(EntityQuery(geo_q=geo, type_expr=TypeName(T)))
    assert compiled.filter == {"$and": [{"type": T}], GEO: expected}
    assert not compiled.exact and compiled.geo_attr == LOC
