"""CSV rows straight to the internal form: a mapping compiled once for its file (issue 18).

A CSV file's entities all come from one mapping (``broker.loader.mapping``): the
same type, the same attribute names in the same order, each with its kind,
datatype and unit.  The usual way builds a compact entity for each row, then
parses, expands and stamps it (``Expander.expand``, ``batch_upsert_mutation``),
finding the same names, kinds and IRIs again at every row.  A
:class:`RowTemplate` finds them once, from one probe entity the usual way
parses and expands, and fills only the values of each row.

It must give exactly what the usual way gives, or nothing: every value is
checked by the same functions the usual way checks it with (``convert``,
``timestamp``, ``is_datetime``, ``is_entity_id``, ``is_utc_datetime``); a row
with anything it does not handle as the usual way does (a refused cell, the
NGSI-LD Null, a JSON object or array value, an integer beyond 64 bits) is left
to the usual way, which then accepts it or refuses it with its own reason.
Mappings it does not compile (a GeoJSON location column, an attribute named as
a reserved member or a GeoProperty) are left to the usual way whole.  Where the
usual way's check can only pass on what the template built (a Point of two
finite coordinates in range; a DateTime literal, whose check is ``is_datetime``
of its text), only that is checked; a column's date-times are converted once
per distinct cell (a file repeats its times).
tests/test_loader_template.py compares both ways, row by row and table by table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from broker.loader.mapping import CsvMapping, RowError, convert, template_parts, timestamp
from ngsi_ld.attributes import PROOF
from ngsi_ld.entity import parse_entity
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.identifiers import is_entity_id
from ngsi_ld.instances import DELETE
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.timeutil import is_datetime, is_utc_datetime

__all__ = ["RowTemplate", "compile_template"]

#: names a mapping's attribute cannot take here: entity members, system members and the
#: GeoProperties of 4.7.1 (the usual way treats them apart)
_RESERVED = frozenset({"id", "@id", "type", "@type", "scope", "expiresAt", "createdAt",
                       "modifiedAt", "deletedAt", "@context"}) | PROOF | frozenset(
    name for term in ("location", "observationSpace", "operationSpace")
    for name in (term, "https://uri.etsi.org/ngsi-ld/" + term))
_NULL_BYTES = DELETE.encode()
_SCALARS = (str, int, float, bool)  # the values whose check is their class alone
_PROBE_ID = "urn:ngsi-ld:Probe:1"
#: distinct cells a column's date-time conversions are kept for
_STAMPS_KEPT = 4096
_PROBE_TIME = "2026-01-01T00:00:00Z"

#: a template of ``{column}`` placeholders: literals at even positions, cell indexes at odd
_Parts = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class _Attribute:
    iri: str  # the expanded name
    index: int  # of its cell
    column: str
    relationship: bool
    datatype: str
    unit: str | None
    parts: _Parts | None  # a Relationship's template
    stamps: _Stamps | None  # a datetime's conversions


class _Stamps:
    """A column's cells as date-times (``timestamp``; None: refused), each converted once."""

    __slots__ = ("column", "known")

    def __init__(self, column: str) -> None:
        self.column = column
        self.known: dict[str, str | None] = {}

    def __call__(self, cell: str) -> str | None:
        stamp = self.known.get(cell, _UNKNOWN)
        if stamp is _UNKNOWN:
            try:
                stamp = timestamp(cell, self.column)
            except RowError:
                stamp = None
            if len(self.known) >= _STAMPS_KEPT:
                self.known.clear()
            self.known[cell] = stamp
        return stamp  # type: ignore[return-value]


_UNKNOWN = object()


class RowTemplate:
    """One mapping and header compiled against an active @context (``compile_template``);
    :meth:`entity` makes a row's expanded and created entities, or None (the usual way)."""

    def __init__(self, mapping: CsvMapping, width: int, index: dict[str, int],
                 types: list[str], iris: list[str], datetime_iri: str) -> None:
        self.width = width
        self.types = types
        self.datetime_iri = datetime_iri
        self.id_parts = _parts(mapping.id, index)
        self.observed = (index[mapping.observed_at], _Stamps(mapping.observed_at)) \
            if mapping.observed_at else None
        self.attributes = tuple(
            _Attribute(iri, index[a.column], a.column, a.kind == "Relationship", a.datatype,
                       a.unit or None, _parts(a.template, index) if a.template else None,
                       _Stamps(a.column) if a.datatype == "datetime" else None)
            for a, iri in zip(mapping.attributes, iris, strict=False))
        self.location = None
        if mapping.longitude and mapping.latitude:
            self.location = (iris[-1], index[mapping.longitude], mapping.longitude,
                             index[mapping.latitude], mapping.latitude)

    def entity(self, cells: list[str], now: str) -> tuple[Entity, bytes, Entity] | None:
        """The row's expanded entity, its encoding and the entity as a batch upsert creates
        it at ``now`` (5.6.8 on an absent entity), as the usual way makes them; None where
        the usual way must decide (it refuses the row, or may)."""
        size = len(cells)
        if size > self.width:
            return None
        entity_id = _fill(self.id_parts, cells)
        if entity_id is None or entity_id == DELETE or not is_entity_id(entity_id):
            return None
        observed: str | None = None
        if self.observed is not None:
            index, stamps = self.observed
            observed = stamps(cells[index] if index < size else "")
            if observed is None or not is_utc_datetime(observed):
                return None
        attrs: dict[str, list[dict[str, Any]]] = {}
        fresh: dict[str, list[dict[str, Any]]] = {}  # as created: stamped ``now``
        for attr in self.attributes:
            cell = cells[attr.index] if attr.index < size else ""
            if cell == "":
                continue
            inst: dict[str, Any]
            if attr.relationship:
                target = _fill(attr.parts, cells) if attr.parts is not None else cell
                if target is None or not is_entity_id(target):
                    return None
                inst = {"type": "Relationship", "object": target}
            elif attr.stamps is not None:  # a datetime: what the usual way checks of it
                stamp = attr.stamps(cell)
                if stamp is None or not is_datetime(stamp):
                    return None
                inst = {"type": "Property",
                        "value": {"@type": self.datetime_iri, "@value": stamp}}
            else:
                try:
                    value = convert(cell, attr.datatype, attr.column)
                except RowError:
                    return None
                if value.__class__ not in _SCALARS:
                    return None  # a JSON object, array or null: the usual way checks it
                inst = {"type": "Property", "value": value}
            if attr.unit is not None and not attr.relationship:
                inst["unitCode"] = attr.unit
            if observed is not None:
                inst["observedAt"] = observed
            attrs[attr.iri] = [inst]
            fresh[attr.iri] = [{**inst, "createdAt": now, "modifiedAt": now}]
        if self.location is not None:
            iri, x_index, x_column, y_index, y_column = self.location
            lon = cells[x_index] if x_index < size else ""
            lat = cells[y_index] if y_index < size else ""
            if lon != "" or lat != "":
                try:
                    x, y = convert(lon, "number", x_column), convert(lat, "number", y_column)
                except RowError:
                    return None
                if not (-180 <= x <= 180 and -90 <= y <= 90):
                    return None
                # two finite numbers in range: a Point the usual way's check passes
                point = {"type": "Point", "coordinates": [x, y]}
                attrs[iri] = [{"type": "GeoProperty", "value": point}]
                fresh[iri] = [{"type": "GeoProperty", "value": point, "createdAt": now,
                               "modifiedAt": now}]
        expanded: Entity = {"id": entity_id, "type": list(self.types), "attrs": attrs}
        try:
            doc = orjson.dumps(expanded)
        except TypeError:  # an integer beyond 64 bits
            return None
        if _NULL_BYTES in doc:
            return None  # the NGSI-LD Null somewhere: the usual way refuses it or not
        created: Entity = {"id": entity_id, "type": list(self.types), "createdAt": now,
                           "modifiedAt": now, "attrs": fresh}
        return expanded, doc, created


def compile_template(mapping: CsvMapping, header: tuple[str, ...],
                     ctx: ActiveContext) -> RowTemplate | None:
    """``mapping`` compiled for a file of ``header`` (its @context already resolved:
    ``ctx``), or None where rows must go the usual way (see the module docstring)."""
    if mapping.geojson or any(a.name in _RESERVED for a in mapping.attributes):
        return None
    # as csv.DictReader builds a row: a name repeated in the header takes its last cell
    index = {name: i for i, name in enumerate(header)}
    if not mapping.columns() <= index.keys():
        return None
    probe: dict[str, Any] = {"id": _PROBE_ID, "type": mapping.type}
    for attr in mapping.attributes:
        probe[attr.name] = (
            {"type": "Relationship", "object": _PROBE_ID} if attr.kind == "Relationship"
            else {"type": "Property", "value": {"@type": "DateTime", "@value": _PROBE_TIME}})
    if mapping.longitude and mapping.latitude:
        probe["location"] = {"type": "GeoProperty", "value": {"type": "Point",
                                                              "coordinates": [0, 0]}}
    try:
        expanded = ctx.expand_entity(parse_entity(probe))
    except NgsiLdError:
        return None  # the usual way refuses every row, with its reason
    iris = list(expanded["attrs"])
    if len(iris) != len(probe) - 2:
        return None
    datetime_iri = next((inst[0]["value"]["@type"] for inst in expanded["attrs"].values()
                         if inst[0]["type"] == "Property"), "DateTime")
    return RowTemplate(mapping, len(header), index, list(expanded["type"]), iris, datetime_iri)


def _parts(template: str, index: dict[str, int]) -> _Parts:
    return tuple(index[part] if odd else part
                 for odd, part in ((n % 2 == 1, p) for n, p in enumerate(template_parts(template))))


def _fill(parts: _Parts, cells: list[str]) -> str | None:
    """``mapping.fill`` on a row's cells; None where it raises (an empty cell)."""
    out = []
    size = len(cells)
    for part in parts:
        if isinstance(part, int):
            cell = cells[part] if part < size else ""
            if cell == "":
                return None
            out.append(cell)
        else:
            out.append(part)
    return "".join(out)
