"""GeoJSON geometry validation (IETF RFC 7946, as required by clause 4.7).

GeoProperty values must be valid geometries; positions are ``[lon, lat]`` or
``[lon, lat, alt]`` in WGS84.  Every problem is a BadRequestData whose detail
names the attribute and the part of the geometry that is wrong.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

from ngsi_ld.errors import BadRequestData

__all__ = ["GEOMETRY_TYPES", "is_geometry", "is_plain_point", "validate_geometry"]

GEOMETRY_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)

# Nesting depth of "coordinates" for each geometry type (a position is depth 1).
_DEPTH = {
    "Point": 1,
    "MultiPoint": 2,
    "LineString": 2,
    "MultiLineString": 3,
    "Polygon": 3,
    "MultiPolygon": 4,
}


def is_geometry(obj: Any) -> bool:
    """True if ``obj`` looks like a GeoJSON geometry (to tell GeoProperties apart).

    It checks the shape only (a geometry ``type`` and ``coordinates`` or
    ``geometries``); :func:`validate_geometry` checks the content.
    """
    if not isinstance(obj, dict):
        return False
    kind = obj.get("type")
    if not isinstance(kind, str):
        return False
    if kind == "GeometryCollection":
        return "geometries" in obj
    return kind in _DEPTH and "coordinates" in obj


def is_plain_point(obj: Any) -> bool:
    """True if ``obj`` is a Point of nothing but its ``type`` and ``coordinates`` that
    :func:`validate_geometry` accepts (the commonest geometry, checked without its
    walk); False for anything else, which :func:`validate_geometry` then judges."""
    if obj.__class__ is not dict or len(obj) != 2 or obj.get("type") != "Point":
        return False
    pos = obj.get("coordinates")
    if pos.__class__ is not list or not 2 <= len(pos) <= 3:
        return False
    for n in pos:  # bool is a subclass of int: a class test excludes it
        if n.__class__ is not float and n.__class__ is not int:
            return False
    # NaN fails every comparison, an infinite longitude or latitude its range
    return -180 <= pos[0] <= 180 and -90 <= pos[1] <= 90 and (
        len(pos) == 2 or pos[2].__class__ is int or math.isfinite(pos[2]))


def validate_geometry(obj: Any, *, where: str = "geometry") -> None:
    """Raise BadRequestData unless ``obj`` is a valid GeoJSON geometry.

    ``where`` names the offending member in the error detail (e.g. the attribute).
    """
    if not isinstance(obj, dict):
        raise BadRequestData(f"{where}: a GeoJSON geometry must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in GEOMETRY_TYPES:
        raise BadRequestData(f"{where}: {_brief(kind)} is not a GeoJSON geometry type")
    if kind == "GeometryCollection":
        members = obj.get("geometries")
        if not isinstance(members, list):
            raise BadRequestData(f"{where}: GeometryCollection needs a 'geometries' array")
        for i, member in enumerate(members):
            validate_geometry(member, where=f"{where}.geometries[{i}]")
        return
    if "coordinates" not in obj:
        raise BadRequestData(f"{where}: {kind} needs 'coordinates'")
    _check(kind, obj["coordinates"], f"{where}.coordinates")


def _check(kind: str, coords: Any, where: str) -> None:
    if kind == "Point":
        _position(coords, where)
    elif kind == "MultiPoint":
        for i, pos in enumerate(_array(coords, where)):
            _position(pos, f"{where}[{i}]")
    elif kind == "LineString":
        _line(coords, where)
    elif kind == "MultiLineString":
        for i, line in enumerate(_array(coords, where)):
            _line(line, f"{where}[{i}]")
    elif kind == "Polygon":
        _polygon(coords, where)
    else:  # MultiPolygon
        for i, poly in enumerate(_array(coords, where)):
            _polygon(poly, f"{where}[{i}]")


_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxlist, _BRIEF.maxdict, _BRIEF.maxstring = 3, 6, 4, 60


def _brief(value: Any) -> str:
    """A bounded repr of client input for an error detail (any size, any depth)."""
    return _BRIEF.repr(value)


def _array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequestData(f"{where}: expected an array of coordinates, got {_brief(value)}")
    return value


def _position(pos: Any, where: str) -> list[float]:
    if not isinstance(pos, list) or len(pos) not in (2, 3):
        raise BadRequestData(
            f"{where}: a position is an array of 2 or 3 numbers, got {_brief(pos)}"
        )
    for n in pos:
        if isinstance(n, bool) or not isinstance(n, int | float) or not math.isfinite(n):
            raise BadRequestData(f"{where}: coordinate {_brief(n)} is not a number")
    lon, lat = pos[0], pos[1]
    if not -180 <= lon <= 180:
        raise BadRequestData(f"{where}: longitude {lon} is outside [-180, 180]")
    if not -90 <= lat <= 90:
        raise BadRequestData(f"{where}: latitude {lat} is outside [-90, 90]")
    return pos


def _line(coords: Any, where: str) -> None:
    positions = _array(coords, where)
    for i, pos in enumerate(positions):
        _position(pos, f"{where}[{i}]")
    if len(positions) < 2:
        raise BadRequestData(f"{where}: a LineString needs at least 2 positions")


def _polygon(coords: Any, where: str) -> None:
    rings = _array(coords, where)
    if not rings:
        raise BadRequestData(f"{where}: a Polygon needs at least one linear ring")
    for i, ring in enumerate(rings):
        spot = f"{where}[{i}]"
        positions = _array(ring, spot)
        for j, pos in enumerate(positions):
            _position(pos, f"{spot}[{j}]")
        if len(positions) < 4:
            raise BadRequestData(f"{spot}: a linear ring needs at least 4 positions")
        if positions[0] != positions[-1]:
            raise BadRequestData(f"{spot}: a linear ring must be closed (first == last)")
