"""Geo-queries (ETSI GS CIM 009 clauses 4.10 and 4.11).

A :class:`GeoQuery` is parsed from the ``georel``, ``geometry``,
``coordinates`` and ``geoproperty`` parameters (or the ``geoQ`` member of a
POST query, where ``coordinates`` is already a list) and evaluated with
shapely on the GeoJSON value of an entity's GeoProperty.

Coordinates are longitude/latitude in degrees (WGS 84).  The topological
relations (within, contains, intersects, overlaps, disjoint, equals) are
computed on the plane of those degrees, as GeoJSON prescribes.  ``near``
distances are great-circle distances in metres (haversine, mean Earth radius):

* exact when the entity geometry is a Point (or MultiPoint: its nearest point);
* 0 when a polygon of the entity contains the reference point;
* otherwise the nearest point of the entity geometry is found in a local
  equirectangular projection centred on the reference point (x scaled by the
  cosine of its latitude), and the haversine distance to that point is used;
  the geometry is moved whole by turns of 360 degrees of longitude (the copies
  within half a turn of the point, the nearest kept), never split.
  This is accurate to well under 1 % for distances up to a few hundred km.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson
import shapely
import shapely.errors
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from ngsi_ld.errors import BadRequestData

EARTH_RADIUS_M = 6_371_008.8
GEORELS = ("near", "within", "contains", "intersects", "overlaps", "disjoint", "equals")
GEOMETRIES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
_DISTANCES = ("maxDistance", "minDistance")


@dataclass(frozen=True)
class GeoQuery:
    """A parsed geo-query; build it with :func:`parse_geo_query`.

    ``coordinates`` is the GeoJSON coordinates as nested tuples; ``geoproperty``
    is the GeoProperty name (a term until resolved, then an IRI).
    """

    georel: str
    geometry: str
    coordinates: Any
    geoproperty: str = "location"
    max_distance: float | None = None
    min_distance: float | None = None
    shape: BaseGeometry = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        geojson = {"type": self.geometry, "coordinates": _lists(self.coordinates)}
        object.__setattr__(self, "shape", shape(geojson))

    def with_geoproperty(self, name: str) -> GeoQuery:
        """The same query on another GeoProperty (used to expand the name)."""
        return replace(self, geoproperty=name)

    def to_json(self) -> dict[str, Any]:
        """The ``geoQ`` member form (clause 5.2.13) of this query."""
        georel = self.georel
        if self.max_distance is not None:
            georel += f";maxDistance=={_fmt(self.max_distance)}"
        if self.min_distance is not None:
            georel += f";minDistance=={_fmt(self.min_distance)}"
        return {
            "geometry": self.geometry,
            "coordinates": _lists(self.coordinates),
            "georel": georel,
            "geoproperty": self.geoproperty,
        }


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


def _lists(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


# -- parsing and validation (4.10, 4.11) ---------------------------------------------------


def _parse_georel(georel: str) -> tuple[str, float | None, float | None]:
    if not isinstance(georel, str) or not georel:
        raise BadRequestData("georel is required with a geo-query")
    parts = georel.split(";")
    name = parts[0]
    if name not in GEORELS:
        raise BadRequestData(f"invalid georel {georel!r}: unknown relation {name!r}")
    if name != "near":
        if len(parts) > 1:
            raise BadRequestData(f"invalid georel {georel!r}: only 'near' takes a distance")
        return name, None, None
    if len(parts) != 2:
        raise BadRequestData(
            f"invalid georel {georel!r}: near needs exactly one of "
            "';maxDistance==N' or ';minDistance==N'"
        )
    key, sep, number = parts[1].partition("==")
    if not sep or key not in _DISTANCES:
        raise BadRequestData(
            f"invalid georel {georel!r}: expected 'maxDistance==N' or 'minDistance==N'"
        )
    try:
        distance = float(number)
    except ValueError:
        raise BadRequestData(f"invalid georel {georel!r}: {number!r} is not a number") from None
    if not math.isfinite(distance) or distance <= 0:
        # 4.10: the distance is a PositiveNumber, in metres
        raise BadRequestData(f"invalid georel {georel!r}: the distance must be > 0 metres")
    if key == "maxDistance":
        return name, distance, None
    return name, None, distance


def _position(value: Any, where: str) -> None:
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise BadRequestData(f"invalid coordinates: {where} must be [longitude, latitude]")
    for number in value:
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise BadRequestData(f"invalid coordinates: {where} holds a non-number")
        if not math.isfinite(number):
            raise BadRequestData(f"invalid coordinates: {where} holds a non-finite number")
    lon, lat = value[0], value[1]
    if not -180 <= lon <= 180 or not -90 <= lat <= 90:
        raise BadRequestData(f"invalid coordinates: {where} {list(value)} is out of range")


def _positions(value: Any, where: str, minimum: int) -> None:
    if not isinstance(value, list | tuple) or len(value) < minimum:
        raise BadRequestData(f"invalid coordinates: {where} needs at least {minimum} positions")
    for index, position in enumerate(value):
        _position(position, f"{where} position {index}")


def _polygon(value: Any, where: str) -> None:
    if not isinstance(value, list | tuple) or not value:
        raise BadRequestData(f"invalid coordinates: {where} needs at least one ring")
    for index, ring in enumerate(value):
        _positions(ring, f"{where} ring {index}", 4)
        if list(ring[0]) != list(ring[-1]):
            raise BadRequestData(f"invalid coordinates: {where} ring {index} is not closed")


def _many(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple) or not value:
        raise BadRequestData(f"invalid coordinates: a {where} needs at least one member")
    return list(value)


def validate_geometry(geometry: str, coordinates: Any) -> None:
    """BadRequestData unless ``coordinates`` fit the GeoJSON ``geometry`` type (4.11)."""
    if not isinstance(geometry, str) or geometry not in GEOMETRIES:
        raise BadRequestData(
            f"invalid geometry {str(geometry)[:100]!r}: expected one of {', '.join(GEOMETRIES)}"
        )
    if geometry == "Point":
        _position(coordinates, "the Point")
    elif geometry == "MultiPoint":
        _positions(coordinates, "the MultiPoint", 1)
    elif geometry == "LineString":
        _positions(coordinates, "the LineString", 2)
    elif geometry == "MultiLineString":
        for index, line in enumerate(_many(coordinates, "MultiLineString")):
            _positions(line, f"line {index}", 2)
    elif geometry == "Polygon":
        _polygon(coordinates, "the Polygon")
    elif geometry == "MultiPolygon":
        for index, polygon in enumerate(_many(coordinates, "MultiPolygon")):
            _polygon(polygon, f"polygon {index}")


def _coordinates(coordinates: str | Any, what: str) -> Any:
    if isinstance(coordinates, str):
        try:
            return orjson.loads(coordinates)
        except orjson.JSONDecodeError:
            raise BadRequestData(
                f"invalid {what} {coordinates[:100]!r}: not a JSON array"
            ) from None
    return coordinates


def reference_shape(geometry: str, coordinates: str | Any, what: str = "coordinates") -> Any:
    """The shapely geometry of a reference geometry given as GeoJSON type and coordinates.

    ``coordinates`` is a JSON text or the parsed array; BadRequestData names ``what``.
    A polygon whose rings cross is accepted (GeoJSON does not forbid it).
    """
    parsed = _coordinates(coordinates, what)
    if parsed is None:
        raise BadRequestData(f"{what} are required with a geometry")
    validate_geometry(geometry, parsed)
    try:
        return shape({"type": geometry, "coordinates": parsed})
    except (ValueError, TypeError, shapely.errors.ShapelyError):
        raise BadRequestData(
            f"invalid {geometry}: positions must all have the same number of dimensions"
        ) from None


# 4.10 Geo-query language
def parse_geo_query(
    georel: str,
    geometry: str,
    coordinates: str | list[Any],
    geoproperty: str = "location",
) -> GeoQuery:
    """Validate the geo-query parameters; BadRequestData names what is wrong."""
    name, max_distance, min_distance = _parse_georel(georel)
    if not isinstance(geometry, str) or not geometry:
        raise BadRequestData("geometry is required with a geo-query")
    coordinates = _coordinates(coordinates, "coordinates")
    if coordinates is None:
        raise BadRequestData("coordinates are required with a geo-query")
    validate_geometry(geometry, coordinates)
    if not isinstance(geoproperty, str) or not geoproperty:
        raise BadRequestData("geoproperty must be a non-empty attribute name")
    try:
        return GeoQuery(
            name, geometry, _tuples(coordinates), geoproperty, max_distance, min_distance
        )
    except (ValueError, TypeError, shapely.errors.ShapelyError):
        raise BadRequestData(
            f"invalid {geometry}: positions must all have the same number of dimensions"
        ) from None


# -- evaluation ------------------------------------------------------------------------------


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two lon/lat points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def entity_shape(value: Any) -> BaseGeometry | None:
    """A shapely geometry for a GeoProperty value, or None if it is not valid GeoJSON."""
    if not isinstance(value, dict) or value.get("type") not in GEOMETRIES:
        return None
    try:
        validate_geometry(value["type"], value.get("coordinates"))
        return shape(value)
    except (BadRequestData, ValueError, TypeError, AttributeError, shapely.errors.ShapelyError):
        return None


def distance_m(lon: float, lat: float, geom: BaseGeometry) -> float:
    """Distance in metres from a point to the nearest point of ``geom`` (see module doc)."""
    if geom.geom_type == "Point":
        return haversine_m(lon, lat, geom.x, geom.y)
    if geom.geom_type == "MultiPoint":
        return min(haversine_m(lon, lat, p.x, p.y) for p in geom.geoms)
    if geom.geom_type in ("Polygon", "MultiPolygon") and geom.covers(Point(lon, lat)):
        return 0.0
    scale = max(math.cos(math.radians(lat)), 1e-6)
    # One shift of 360 degrees for the whole geometry, never one per vertex: wrapped
    # vertex by vertex, a geometry across the point's opposite meridian is split over
    # the whole width and seems to surround the point (a square by 0 degrees "near" a
    # point at 180).  The copies one turn either side of it are candidates too.
    # (the shift puts the west bound within half a turn of the point: any vertex
    # would do, and the bounds are read anyway; 1.4 us a call less than asking for
    # the first vertex, of 21 to 25 us for a square not around the point)
    west, _, east, _ = shapely.bounds(geom).tolist()
    first = west - lon
    shift = (first + 180.0) % 360.0 - 180.0 - first
    best = math.inf
    for turn in (shift - 360.0, shift, shift + 360.0):
        if west + turn - lon > 180.0 or east + turn - lon < -180.0:
            continue  # this copy lies wholly over half the world away

        def project(coords: np.ndarray, turn: float = turn) -> np.ndarray:
            out = coords.copy()
            out[:, 0] = (coords[:, 0] - lon + turn) * scale
            out[:, 1] = coords[:, 1] - lat
            return out

        nearest = nearest_points(shapely.transform(geom, project), Point(0.0, 0.0))[0]
        best = min(best, haversine_m(lon, lat, lon + nearest.x / scale, lat + nearest.y))
    return best


def _vertices(geom: BaseGeometry) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in shapely.get_coordinates(geom)]


def geometry_distance_m(reference: BaseGeometry, geom: BaseGeometry) -> float:
    """Distance in metres between two geometries (see :func:`distance_m`).

    Exact from a point; between two extended geometries 0 where they meet, else
    the least distance from a vertex of one to the other.
    """
    if reference.geom_type == "Point":
        return distance_m(reference.x, reference.y, geom)
    if geom.geom_type == "Point":
        return distance_m(geom.x, geom.y, reference)
    try:
        if reference.intersects(geom):
            return 0.0
    except shapely.errors.ShapelyError:
        pass
    return min(
        min((distance_m(x, y, geom) for x, y in _vertices(reference)), default=math.inf),
        min((distance_m(x, y, reference) for x, y in _vertices(geom)), default=math.inf),
    )


def _repaired(geom: BaseGeometry) -> BaseGeometry:
    return geom if geom.is_valid else shapely.make_valid(geom)


def geo_matches(query: GeoQuery, value: Any) -> bool:
    """True if one GeoProperty value satisfies the query; invalid values never do."""
    geom = entity_shape(value)
    if geom is None:
        return False
    rel = query.georel
    if rel == "near":
        distance = geometry_distance_m(query.shape, geom)
        if query.max_distance is not None:
            return distance <= query.max_distance
        return query.min_distance is not None and distance >= query.min_distance
    target = query.shape
    if rel != "equals":
        # a query polygon whose rings cross is read as the area it encloses
        target, geom = _repaired(target), _repaired(geom)
    try:
        if rel == "within":
            return bool(geom.within(target))
        if rel == "contains":
            return bool(geom.contains(target))
        if rel == "intersects":
            return bool(geom.intersects(target))
        if rel == "overlaps":
            return bool(geom.overlaps(target))
        if rel == "disjoint":
            return bool(geom.disjoint(target))
        return bool(geom.equals(target))
    except shapely.errors.ShapelyError:
        return False


def bbox_for(query: GeoQuery) -> tuple[float, float, float, float] | None:
    """(minlon, minlat, maxlon, maxlat) containing every geometry that can match, or None.

    A candidate matches only if its own bounding box intersects this box, so a
    spatial index may pre-filter with it.  None when no box bounds the matches
    (disjoint, near;minDistance).
    """
    if query.georel == "disjoint" or query.min_distance is not None:
        return None
    if query.georel != "near":
        minx, miny, maxx, maxy = query.shape.bounds
        return (float(minx), float(miny), float(maxx), float(maxy))
    assert query.max_distance is not None
    if query.shape.geom_type != "Point":
        return _widened(query.shape.bounds, query.max_distance * 1.01)
    lon, lat = query.shape.x, query.shape.y
    # 1 % margin: the distance to non-point shapes is approximated (module doc)
    angle = query.max_distance * 1.01 / EARTH_RADIUS_M + 1e-9
    dlat = math.degrees(angle)
    minlat, maxlat = lat - dlat, lat + dlat
    if minlat <= -90 or maxlat >= 90 or angle >= math.pi / 2:
        return (-180.0, max(minlat, -90.0), 180.0, min(maxlat, 90.0))
    ratio = math.sin(angle) / math.cos(math.radians(lat))
    if ratio >= 1:
        return (-180.0, minlat, 180.0, maxlat)
    dlon = math.degrees(math.asin(ratio))
    if lon - dlon < -180 or lon + dlon > 180:
        return (-180.0, minlat, 180.0, maxlat)
    return (lon - dlon, minlat, lon + dlon, maxlat)


def _widened(
    bounds: tuple[float, float, float, float], metres: float
) -> tuple[float, float, float, float]:
    """A lon/lat box holding every point within ``metres`` of the box ``bounds``."""
    minx, miny, maxx, maxy = bounds
    dlat = math.degrees(metres / EARTH_RADIUS_M) + 1e-9
    minlat, maxlat = miny - dlat, maxy + dlat
    if minlat <= -90 or maxlat >= 90:
        return (-180.0, max(minlat, -90.0), 180.0, min(maxlat, 90.0))
    # a degree of longitude is shortest at the latitude farthest from the equator
    cos_lat = math.cos(math.radians(max(abs(minlat), abs(maxlat))))
    dlon = dlat / cos_lat if cos_lat > 1e-9 else 360.0
    if minx - dlon < -180 or maxx + dlon > 180:
        return (-180.0, minlat, 180.0, maxlat)
    return (minx - dlon, minlat, maxx + dlon, maxlat)
