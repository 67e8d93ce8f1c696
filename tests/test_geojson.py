"""Tests of ngsi_ld.geojson: geometry detection and validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.geojson import is_geometry, validate_geometry

SQUARE = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
VALID = [
    {"type": "Point", "coordinates": [-3.7, 40.4]},
    {"type": "Point", "coordinates": [180, -90, 12.5]},
    {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]},
    {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
    {"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]},
    {"type": "Polygon", "coordinates": [SQUARE]},
    {"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE]]},
    {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 2]}]},
]


@pytest.mark.parametrize("geometry", VALID)
def test_valid_geometries(geometry: dict[str, Any]) -> None:
    validate_geometry(geometry)
    assert is_geometry(geometry)


@pytest.mark.parametrize(
    ("geometry", "problem"),
    [
        ({"type": "Point", "coordinates": [200, 0]}, "longitude"),
        ({"type": "Point", "coordinates": [0, 91]}, "latitude"),
        ({"type": "Point", "coordinates": [1]}, "position"),
        ({"type": "Point", "coordinates": [1, 2, 3, 4]}, "position"),
        ({"type": "Point", "coordinates": ["1", 2]}, "not a number"),
        ({"type": "Point", "coordinates": [True, 2]}, "not a number"),
        ({"type": "Point"}, "coordinates"),
        ({"type": "LineString", "coordinates": [[1, 2]]}, "at least 2"),
        ({"type": "LineString", "coordinates": [1, 2]}, "position"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least 4"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "closed"),
        ({"type": "Polygon", "coordinates": []}, "linear ring"),
        ({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0]]]]}, "at least 4"),
        ({"type": "Circle", "coordinates": [1, 2]}, "'Circle'"),
        ({"type": "GeometryCollection"}, "geometries"),
        (
            {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0]}]},
            "geometries[0]",
        ),
        ([1, 2], "JSON object"),
    ],
)
def test_invalid_geometries_name_the_problem(geometry: Any, problem: str) -> None:
    with pytest.raises(BadRequestData) as err:
        validate_geometry(geometry, where="Attribute 'location'")
    assert "location" in err.value.detail
    assert problem in err.value.detail


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "Point"},
        {"type": "PostalAddress", "coordinates": [1, 2]},
        [1, 2],
        "Point",
        {"type": ["Point"], "coordinates": [1, 2]},
        {"coordinates": [1, 2]},
    ],
)
def test_is_geometry_rejects_other_shapes(obj: Any) -> None:
    assert not is_geometry(obj)


positions = st.tuples(
    st.floats(-180, 180, allow_nan=False), st.floats(-90, 90, allow_nan=False)
).map(list)


@given(st.lists(positions, min_size=2))
def test_any_line_of_valid_positions_is_valid(line: list[list[float]]) -> None:
    validate_geometry({"type": "LineString", "coordinates": line})
    ring = [*line, line[0]] if len(line) >= 3 else [*line, line[0], line[0]]
    validate_geometry({"type": "Polygon", "coordinates": [ring]})


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: abs(x) > 180))
def test_any_longitude_beyond_180_is_rejected(lon: float) -> None:
    with pytest.raises(BadRequestData, match="longitude"):
        validate_geometry({"type": "Point", "coordinates": [lon, 0]})
