"""CSV columns to NGSI-LD attributes: the mapping file of ``ngsi-ld-broker load``.

A mapping is a small JSON document::

    {
      "type": "AirQualityObserved",
      "id": "urn:ngsi-ld:AirQualityObserved:hk:{station}",
      "@context": "https://example.org/air-quality-context.jsonld",
      "location": {"longitude": "lon", "latitude": "lat"},
      "observedAt": "time",
      "attributes": {
        "no2": {"column": "no2", "datatype": "number", "unitCode": "GQ"},
        "dateObserved": {"column": "time", "datatype": "datetime"},
        "refDevice": {"column": "sensor", "kind": "Relationship",
                      "template": "urn:ngsi-ld:Device:{sensor}"}
      }
    }

``id`` (and a Relationship's ``template``) is a template of ``{column}``
placeholders; ``location`` names the longitude and latitude columns (a Point
GeoProperty) or one ``geojson`` column holding a geometry; ``observedAt``
names a column stamped on every attribute.  An attribute's ``kind`` is
Property (default) or Relationship; ``datatype`` is string (default), number,
integer, boolean, datetime or json; ``unitCode`` is copied as given.  An empty
cell leaves its attribute out; a cell that does not parse as its datatype
rejects the row, with the column and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

DATATYPES = ("string", "number", "integer", "boolean", "datetime", "json")
KINDS = ("Property", "Relationship")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class MappingError(ValueError):
    """A mapping file that cannot be used (the message names the member)."""


class RowError(ValueError):
    """A row the mapping cannot turn into an entity (the message is the reason)."""


@dataclass(frozen=True, slots=True)
class Column:
    """How one attribute is read from a row."""

    name: str
    column: str
    kind: str = "Property"
    datatype: str = "string"
    unit: str | None = None
    template: str | None = None


@dataclass(frozen=True, slots=True)
class CsvMapping:
    """A parsed mapping file (see the module docstring)."""

    type: str
    id: str
    context: Any = None
    longitude: str | None = None
    latitude: str | None = None
    geojson: str | None = None
    observed_at: str | None = None
    attributes: tuple[Column, ...] = field(default_factory=tuple)
    delimiter: str = ","

    def columns(self) -> set[str]:
        """Every column the mapping reads."""
        used = set(_PLACEHOLDER.findall(self.id))
        used.update(c for c in (self.longitude, self.latitude, self.geojson, self.observed_at) if c)
        for attr in self.attributes:
            used.add(attr.column)
            used.update(_PLACEHOLDER.findall(attr.template or ""))
        return used

    def entity(self, row: Mapping[str, str]) -> dict[str, Any]:
        """The NGSI-LD entity (normalized) of one CSV row; RowError says why not."""
        entity: dict[str, Any] = {"id": fill(self.id, row), "type": self.type}
        observed = None
        if self.observed_at:
            observed = timestamp(row.get(self.observed_at, ""), self.observed_at)
        for attr in self.attributes:
            cell = row.get(attr.column, "")
            if cell == "":
                continue
            if attr.kind == "Relationship":
                target = fill(attr.template, row) if attr.template else cell
                instance: dict[str, Any] = {"type": "Relationship", "object": target}
            else:
                instance = {"type": "Property", "value": convert(cell, attr.datatype, attr.column)}
                if attr.unit:
                    instance["unitCode"] = attr.unit
            if observed:
                instance["observedAt"] = observed
            entity[attr.name] = instance
        geometry = self._geometry(row)
        if geometry is not None:
            entity["location"] = {"type": "GeoProperty", "value": geometry}
        if self.context is not None:
            entity["@context"] = self.context
        return entity

    def _geometry(self, row: Mapping[str, str]) -> dict[str, Any] | None:
        if self.geojson:
            cell = row.get(self.geojson, "")
            if cell == "":
                return None
            value = convert(cell, "json", self.geojson)
            if not isinstance(value, dict):
                raise RowError(f"column {self.geojson}: not a GeoJSON geometry")
            return value
        if self.longitude and self.latitude:
            lon, lat = row.get(self.longitude, ""), row.get(self.latitude, "")
            if lon == "" and lat == "":
                return None
            x = convert(lon, "number", self.longitude)
            y = convert(lat, "number", self.latitude)
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                raise RowError(f"columns {self.longitude}, {self.latitude}: "
                               f"({x}, {y}) is not a longitude and a latitude")
            return {"type": "Point", "coordinates": [x, y]}
        return None


def fill(template: str, row: Mapping[str, str]) -> str:
    """``template`` with each ``{column}`` replaced by the row's cell (empty: RowError)."""

    def cell(match: re.Match[str]) -> str:
        value = row.get(match.group(1), "")
        if value == "":
            raise RowError(f"column {match.group(1)} is empty (it is part of {template!r})")
        return value

    return _PLACEHOLDER.sub(cell, template)


def template_parts(template: str) -> list[str]:
    """``template`` split at its placeholders: literal text at even positions, the column
    names at odd ones (``fill`` joins them with the row's cells)."""
    return _PLACEHOLDER.split(template)


def convert(cell: str, datatype: str, column: str) -> Any:
    """A cell as its datatype; RowError with the column and the reason."""
    text = cell.strip()
    try:
        if datatype == "string":
            return cell
        if datatype == "number":
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            # "12" stays an integer, "12.0" and "1e3" stay floats: as JSON would read them
            integral = value.is_integer() and not any(c in text for c in ".eE")
            return int(value) if integral else value
        if datatype == "integer":
            return int(text)
        if datatype == "boolean":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        if datatype == "datetime":
            return {"@type": "DateTime", "@value": timestamp(text, column)}
        if datatype == "json":
            return orjson.loads(text)
    except (ValueError, orjson.JSONDecodeError):
        raise RowError(f"column {column}: {cell!r} is not a {datatype}") from None
    raise RowError(f"column {column}: unknown datatype {datatype!r}")


def timestamp(text: str, column: str) -> str:
    """A cell as an ISO 8601 date-time with its time zone ("Z" for UTC); RowError if not."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RowError(f"column {column}: {text!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise RowError(f"column {column}: {text!r} has no time zone")
    return parsed.isoformat().replace("+00:00", "Z")


def parse_mapping(document: Any) -> CsvMapping:
    """A CsvMapping from the parsed JSON of a mapping file; MappingError names what is wrong."""
    if not isinstance(document, dict):
        raise MappingError("a mapping is a JSON object")
    for member in ("type", "id"):
        if not isinstance(document.get(member), str) or not document[member]:
            raise MappingError(f"the mapping needs {member!r}, a non-empty string")
    if not _PLACEHOLDER.search(document["id"]):
        raise MappingError("'id' must name at least one {column}: every row needs its own id")
    location = document.get("location") or {}
    if not isinstance(location, dict) or not set(location) <= {"longitude", "latitude", "geojson"}:
        raise MappingError("'location' is {\"longitude\": col, \"latitude\": col} "
                           "or {\"geojson\": col}")
    if ("longitude" in location) != ("latitude" in location):
        raise MappingError("'location' needs both longitude and latitude")
    attributes = document.get("attributes", {})
    if not isinstance(attributes, dict):
        raise MappingError("'attributes' maps attribute names to column descriptions")
    columns = tuple(_column(name, spec) for name, spec in attributes.items())
    delimiter = document.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise MappingError("'delimiter' is one character")
    observed = document.get("observedAt")
    if observed is not None and not isinstance(observed, str):
        raise MappingError("'observedAt' names a column")
    return CsvMapping(
        type=document["type"], id=document["id"], context=document.get("@context"),
        longitude=location.get("longitude"), latitude=location.get("latitude"),
        geojson=location.get("geojson"), observed_at=observed,
        attributes=columns, delimiter=delimiter,
    )


def _column(name: str, spec: Any) -> Column:
    if isinstance(spec, str):
        spec = {"column": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("column"), str):
        raise MappingError(f"attribute {name!r}: a column name or {{\"column\": ...}}")
    kind = spec.get("kind", "Property")
    datatype = spec.get("datatype", "string")
    if kind not in KINDS:
        raise MappingError(f"attribute {name!r}: kind is one of {', '.join(KINDS)}")
    if datatype not in DATATYPES:
        raise MappingError(f"attribute {name!r}: datatype is one of {', '.join(DATATYPES)}")
    unit, template = spec.get("unitCode"), spec.get("template")
    if unit is not None and not isinstance(unit, str):
        raise MappingError(f"attribute {name!r}: unitCode is a string")
    if template is not None and not isinstance(template, str):
        raise MappingError(f"attribute {name!r}: template is a string")
    return Column(name, spec["column"], kind, datatype, unit, template)


__all__ = ["Column", "CsvMapping", "MappingError", "RowError", "convert", "fill", "parse_mapping",
           "template_parts", "timestamp"]
