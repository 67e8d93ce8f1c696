"""Geo-queries (clauses 4.10 and 4.11): parsing, evaluation and bounding boxes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query import bbox_for, geo_matches, haversine_m, parse_geo_query
from ngsi_ld.query.geo import EARTH_RADIUS_M, distance_m, entity_shape

# Hong Kong, Statue Square
HK = (114.1600, 22.2810)


def north_of(point: tuple[float, float], metres: float) -> list[float]:
    return [point[0], point[1] + math.degrees(metres / EARTH_RADIUS_M)]


def east_of(point: tuple[float, float], metres: float) -> list[float]:
    lat = math.radians(point[1])
    return [point[0] + math.degrees(metres / (EARTH_RADIUS_M * math.cos(lat))), point[1]]


def point(coords: list[float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": coords}


def near(relation: str) -> Any:
    return parse_geo_query(relation, "Point", f"[{HK[0]}, {HK[1]}]")


def test_near_point_900_metres_away() -> None:
    target = point(north_of(HK, 900))
    assert geo_matches(near("near;maxDistance==1000"), target)
    assert not geo_matches(near("near;maxDistance==800"), target)
    assert geo_matches(near("near;minDistance==800"), target)
    assert not geo_matches(near("near;minDistance==1000"), target)


def test_a_geometry_across_the_opposite_meridian_is_not_split_around_the_point() -> None:
    """A square by longitude 0 is 20,000 km from a point at 180, not 0 (found by the
    SQLite geo cells test: its vertices wrapped one by one spanned the whole width);
    across the antimeridian the nearest turn counts."""
    square = {"type": "Polygon", "coordinates": [[
        [-1e-07, 0], [9.99e-05, 0], [9.99e-05, 0.0001], [-1e-07, 0.0001], [-1e-07, 0]]]}
    assert distance_m(180.0, 0.0, entity_shape(square)) == pytest.approx(
        math.pi * EARTH_RADIUS_M, rel=1e-4)
    query = parse_geo_query("near;maxDistance==1", "Polygon", square["coordinates"], "loc")
    assert not geo_matches(query, {"type": "Point", "coordinates": [180.0, 0.0]})
    wide = {"type": "LineString", "coordinates": [[-170, 0], [170, 0]]}  # through 0
    assert distance_m(179.0, 0.0, entity_shape(wide)) == pytest.approx(
        haversine_m(179.0, 0.0, 170.0, 0.0), rel=1e-3)
    east = {"type": "LineString", "coordinates": [[179.9, 0], [179.8, 0.1]]}
    assert distance_m(-179.5, 0.0, entity_shape(east)) == pytest.approx(
        haversine_m(-179.5, 0.0, 179.9, 0.0), rel=1e-3)


def test_haversine_against_a_known_distance() -> None:
    # Hong Kong (Statue Square) to Macau (Senado Square) is about 64 km
    assert haversine_m(114.1600, 22.2810, 113.5405, 22.1935) == pytest.approx(64_400, rel=0.02)
    assert haversine_m(*HK, *east_of(HK, 1234)) == pytest.approx(1234, rel=1e-3)


def test_near_a_line_and_a_polygon_uses_the_nearest_point() -> None:
    lon, lat = north_of(HK, 700)
    start, end = [lon - 0.01, lat], east_of((lon, lat), 5000)
    line = {"type": "LineString", "coordinates": [start, end]}
    assert distance_m(*HK, entity_shape(line)) == pytest.approx(700, rel=0.01)
    assert geo_matches(near("near;maxDistance==750"), line)
    assert not geo_matches(near("near;maxDistance==650"), line)
    square = {
        "type": "Polygon",
        "coordinates": [
            [[114.15, 22.27], [114.17, 22.27], [114.17, 22.29], [114.15, 22.29], [114.15, 22.27]]
        ],
    }
    assert distance_m(*HK, entity_shape(square)) == 0
    assert geo_matches(near("near;maxDistance==1"), square)


VICTORIA = [[[114.10, 22.20], [114.25, 22.20], [114.25, 22.35], [114.10, 22.35], [114.10, 22.20]]]
INNER = {
    "type": "Polygon",
    "coordinates": [
        [[114.15, 22.27], [114.17, 22.27], [114.17, 22.29], [114.15, 22.29], [114.15, 22.27]]
    ],
}
OVERLAPPING = {
    "type": "Polygon",
    "coordinates": [
        [[114.20, 22.30], [114.30, 22.30], [114.30, 22.40], [114.20, 22.40], [114.20, 22.30]]
    ],
}
FAR = point([113.54, 22.19])


def poly(relation: str, coordinates: Any = VICTORIA) -> Any:
    return parse_geo_query(relation, "Polygon", coordinates)


@pytest.mark.parametrize(
    ("relation", "value", "expected"),
    [
        ("within", point(list(HK)), True),
        ("within", INNER, True),
        ("within", OVERLAPPING, False),
        ("within", FAR, False),
        ("intersects", OVERLAPPING, True),
        ("intersects", FAR, False),
        ("overlaps", OVERLAPPING, True),
        ("overlaps", INNER, False),
        ("disjoint", FAR, True),
        ("disjoint", INNER, False),
        ("equals", {"type": "Polygon", "coordinates": VICTORIA}, True),
        ("equals", INNER, False),
        ("contains", INNER, False),
    ],
)
def test_polygon_relations(relation: str, value: dict[str, Any], expected: bool) -> None:
    assert geo_matches(poly(relation), value) is expected


def test_contains_and_multi_geometries() -> None:
    big = {"type": "Polygon", "coordinates": VICTORIA}
    assert geo_matches(parse_geo_query("contains", "Point", list(HK)), big)
    assert not geo_matches(parse_geo_query("contains", "Point", [113.54, 22.19]), big)
    multi = parse_geo_query("intersects", "MultiPoint", [[113.54, 22.19], list(HK)])
    assert geo_matches(multi, big)
    lines = parse_geo_query("intersects", "MultiLineString", [[[114.0, 22.0], [114.3, 22.4]]])
    assert geo_matches(lines, big)
    polys = parse_geo_query("within", "MultiPolygon", [VICTORIA])
    assert geo_matches(polys, INNER)


def test_invalid_entity_geometries_never_match() -> None:
    query = poly("intersects")
    for value in (
        None,
        3,
        {"type": "Point"},
        {"type": "Point", "coordinates": "x"},
        {"type": "Circle", "coordinates": [1, 2]},
        point([500, 1]),
    ):
        assert not geo_matches(query, value)


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "message"),
    [
        ("nearby", "Point", "[1, 2]", "unknown relation"),
        ("near", "Point", "[1, 2]", "near needs exactly one"),
        ("near;maxDistance==", "Point", "[1, 2]", "is not a number"),
        ("near;maxDistance==-5", "Point", "[1, 2]", "> 0"),
        ("near;maxDistance==0", "Point", "[1, 2]", "> 0"),
        ("near;minDistance==0", "Point", "[1, 2]", "> 0"),
        ("near;distance==5", "Point", "[1, 2]", "expected 'maxDistance==N'"),
        ("within;maxDistance==5", "Polygon", VICTORIA, "only 'near' takes a distance"),
        ("", "Point", "[1, 2]", "georel is required"),
        ("within", "Circle", "[1, 2]", "invalid geometry 'Circle'"),
        ("within", "", "[1, 2]", "geometry is required"),
        ("within", "Point", "[1, 2", "not a JSON array"),
        ("within", "Point", "[1]", "must be [longitude, latitude]"),
        ("within", "Point", '[1, "2"]', "non-number"),
        ("within", "Point", "[200, 2]", "out of range"),
        ("within", "LineString", "[[1, 2]]", "at least 2 positions"),
        ("within", "Polygon", "[[[0,0],[1,0],[1,1],[0,0.5]]]", "not closed"),
        ("within", "MultiPolygon", "[]", "at least one member"),
        ("within", "Polygon", "[[[0,0],[1,0,5],[1,1],[0,0]]]", "same number of dimensions"),
    ],
)
def test_invalid_geo_queries(georel: str, geometry: str, coordinates: Any, message: str) -> None:
    with pytest.raises(BadRequestData, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_geo_query(georel, geometry, coordinates)


def test_bbox() -> None:
    assert bbox_for(poly("within")) == (114.10, 22.20, 114.25, 22.35)
    assert bbox_for(poly("disjoint")) is None
    assert bbox_for(near("near;minDistance==10")) is None
    minlon, minlat, maxlon, maxlat = bbox_for(near("near;maxDistance==1000"))  # type: ignore[misc]
    assert minlon < HK[0] < maxlon and minlat < HK[1] < maxlat
    assert haversine_m(*HK, HK[0], maxlat) == pytest.approx(1010, rel=0.01)
    wrapped = bbox_for(parse_geo_query("near;maxDistance==100", "Point", [179.9999, 0]))
    assert wrapped is not None and wrapped[0] == -180


@settings(max_examples=200)
@given(
    st.floats(-179, 179),
    st.floats(-80, 80),
    st.floats(0, 2 * math.pi),
    st.floats(1, 200_000),
    st.floats(0.01, 1.5),
)
def test_every_near_match_lies_in_the_bbox(
    lon: float, lat: float, bearing: float, limit: float, fraction: float
) -> None:
    query = parse_geo_query(f"near;maxDistance=={limit}", "Point", [lon, lat])
    # a point at fraction * limit along the bearing (spherical destination formula)
    d = limit * fraction / EARTH_RADIUS_M
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))
    l2 = l1 + math.atan2(
        math.sin(bearing) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    target = [((math.degrees(l2) + 180) % 360) - 180, math.degrees(p2)]
    matched = geo_matches(query, point(target))
    assert matched is (fraction <= 1 - 1e-9) or abs(fraction - 1) < 1e-6
    box = bbox_for(query)
    assert box is not None
    if matched:
        assert box[0] <= target[0] <= box[2] and box[1] <= target[1] <= box[3]


_positions = st.lists(st.integers(-3, 3), min_size=1, max_size=4)
_json = st.recursive(
    st.one_of(_positions, st.integers(-200, 200), st.floats(-200, 200), st.booleans(), st.text()),
    lambda c: st.lists(c, min_size=1, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300)
@given(
    st.one_of(st.sampled_from(["near;maxDistance==10", "within", "intersects"]), st.text()),
    st.one_of(st.sampled_from(["Point", "LineString", "Polygon", "MultiPolygon"]), st.text()),
    st.one_of(_json, _json.map(str), st.text()),
)
def test_garbage_geo_queries_only_raise_bad_request_data(
    georel: str, geometry: str, coordinates: Any
) -> None:
    try:
        query = parse_geo_query(georel, geometry, coordinates)
    except BadRequestData:
        return
    assert geo_matches(query, point(list(HK))) in (True, False)


def test_near_measures_from_the_closest_point_of_a_reference_line() -> None:
    # 4.10: [10, 60.009] is ~1 km from the line along latitude 60 (557 km from its start)
    probe = point([10, 60.009])
    assert geo_matches(parse_geo_query("near;maxDistance==2000", "LineString",
                                       [[0, 60], [10, 60]]), probe)
    far = parse_geo_query("near;maxDistance==2000", "LineString", [[0, 61], [10, 61]])
    assert not geo_matches(far, probe)
    assert geo_matches(parse_geo_query("near;minDistance==100000", "LineString",
                                       [[0, 61], [10, 61]]), probe)


def test_a_query_polygon_whose_rings_cross_is_accepted() -> None:
    # GeoJSON does not forbid it: the polygon is its own equal, and encloses its area
    bowtie = [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]
    value = {"type": "Polygon", "coordinates": bowtie}
    assert geo_matches(parse_geo_query("equals", "Polygon", bowtie), value)
    assert geo_matches(parse_geo_query("within", "Polygon", bowtie), point([1.9, 1.0]))
    assert not geo_matches(parse_geo_query("within", "Polygon", bowtie), point([1.0, 1.9]))


@settings(max_examples=100)
@given(st.floats(-170, 170), st.floats(-70, 70), st.floats(100, 100_000), st.floats(0, 0.99))
def test_the_bbox_of_near_a_line_holds_every_match(
    lon: float, lat: float, limit: float, fraction: float
) -> None:
    line = [[lon, lat], [lon + 1, lat + 0.5]]
    query = parse_geo_query(f"near;maxDistance=={limit}", "LineString", line)
    # a point north of the line's end, fraction * limit away
    target = [lon + 1, lat + 0.5 + math.degrees(limit * fraction / EARTH_RADIUS_M)]
    assert geo_matches(query, point(target))
    box = bbox_for(query)
    assert box is not None and box[0] <= target[0] <= box[2] and box[1] <= target[1] <= box[3]
