"""Entity ordering (ETSI GS CIM 009 clause 4.23): ``orderBy``, ``orderFrom``, ``collation``.

``orderBy`` is a comma-separated list of terms, each an Entity member (``id``,
``type``, ``scope``, ``createdAt``, ``modifiedAt``) or an attribute path as in q
(``name``, ``name.observedAt``, ``name.sub``, ``address[city]``), optionally
followed by ``;asc`` (the default), ``;desc``, ``;dist-asc`` or ``;dist-desc``.
Terms apply in turn; entities equal on every term stay in id order.

Values compare within their datatype, and datatypes in the order of 4.23.2:
numbers, strings, objects, arrays, booleans, times, dates, date-times, null, and
last an absent attribute.  ``desc`` reverses the order of the values; null and
absent stay last.  Strings compare by code point unless a collation is given
(:mod:`ngsi_ld.query.collation`).  By distance, GeoProperties rank first by the
great-circle distance of their geometry from the ``orderFrom`` geometry, then
the other values as above.  A multi-attribute orders by its default instance (or
its first one).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
from shapely.geometry.base import BaseGeometry

from ngsi_ld.errors import BadRequestData
from ngsi_ld.instances import MAIN_MEMBER
from ngsi_ld.query.ast import TIME_MEMBERS, AttrPath, Exists, parse_instant, parse_time_seconds
from ngsi_ld.query.evaluate import instances
from ngsi_ld.query.geo import entity_shape, geometry_distance_m, reference_shape
from ngsi_ld.query.qlang import parse_q

#: an entity as stored (the internal form), in and out of the sort
_E = TypeVar("_E", bound=Mapping[str, Any])

DIRECTIONS = ("asc", "desc", "dist-asc", "dist-desc")
#: Entity members an ordering term may name instead of an attribute
ENTITY_MEMBERS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt"})
# 4.23.2: the rank of each datatype (null values and absent attributes last)
_NUMBER, _STRING, _OBJECT, _ARRAY, _BOOLEAN, _TIME, _DATE, _DATETIME, _NULL, _ABSENT = range(10)
_GEO = -1  # by distance, GeoProperties rank before every value


@dataclass(frozen=True, slots=True)
class OrderTerm:
    """One ``orderBy`` element: an Entity member or an attribute path, and a direction."""

    path: AttrPath
    direction: str = "asc"

    @property
    def member(self) -> str | None:
        """The Entity member this term orders by, or None for an attribute."""
        path = self.path
        if len(path.names) == 1 and path.member is None and not path.keys:
            name = path.names[0]
            return name if name in ENTITY_MEMBERS else None
        return None

    @property
    def by_distance(self) -> bool:
        return self.direction.startswith("dist-")


@dataclass(frozen=True)
class Ordering:
    """A parsed ordering: its terms, the distance reference and the collation tag."""

    terms: tuple[OrderTerm, ...]
    origin: BaseGeometry | None = None
    collation: str | None = None


# 4.23.3 NGSI-LD Entity Ordering Language
def parse_order_by(elements: str | Sequence[str]) -> tuple[OrderTerm, ...]:
    """The terms of an ``orderBy`` (a comma-separated string or a list of elements)."""
    items = elements.split(",") if isinstance(elements, str) else list(elements)
    if not items:
        raise BadRequestData("orderBy needs at least one element")
    terms = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise BadRequestData("orderBy has an empty element")
        text, _, direction = item.strip().partition(";")
        direction = direction.strip() or "asc"
        if direction not in DIRECTIONS:
            raise BadRequestData(
                f"invalid orderBy element {item!r}: the direction is one of {', '.join(DIRECTIONS)}"
            )
        bad = BadRequestData(f"invalid orderBy element {item!r}: not an attribute path")
        if text.strip().startswith("("):
            raise bad
        try:
            expr = parse_q(text.strip())
        except BadRequestData:
            raise bad from None
        if not isinstance(expr, Exists) or expr.negated:
            raise bad
        terms.append(OrderTerm(expr.path, direction))
    return tuple(terms)


def parse_ordering(
    order_by: str | Sequence[str],
    coordinates: str | Sequence[Any] | None = None,
    geometry: str | None = None,
    collation: str | None = None,
) -> Ordering:
    """An Ordering; BadRequestData if distance ordering lacks its reference geometry."""
    terms = parse_order_by(order_by)
    origin = None
    if coordinates is not None or geometry is not None:
        if coordinates is None:
            raise BadRequestData("the ordering geometry needs its coordinates (orderFrom)")
        if geometry is not None and not isinstance(geometry, str):
            raise BadRequestData("the ordering geometry must be a GeoJSON geometry type name")
        origin = reference_shape(geometry or "Point", coordinates, "orderFrom")
    if origin is None and any(term.by_distance for term in terms):
        raise BadRequestData("ordering by distance needs the coordinates to measure from "
                             "(orderFrom)")
    return Ordering(terms, origin, collation)


def resolve_ordering(ordering: Ordering, expand: Callable[[str], str]) -> Ordering:
    """The ordering with its attribute names expanded (Entity members stay)."""
    terms = tuple(
        term if term.member is not None else replace(
            term, path=replace(term.path, names=tuple(expand(n) for n in term.path.names))
        )
        for term in ordering.terms
    )
    return replace(ordering, terms=terms)


# -- keys ------------------------------------------------------------------------------------


def _rank(value: Any, string_key: Callable[[str], Any], temporal: bool) -> tuple[int, Any]:
    """(datatype rank, comparable value) of one target value (4.23.2)."""
    if value is None:
        return _NULL, 0
    if isinstance(value, bool):
        return _BOOLEAN, int(value)
    if isinstance(value, int | float):
        return _NUMBER, value
    if isinstance(value, str):
        if temporal:
            try:
                return _DATETIME, parse_instant(value).timestamp()
            except ValueError:
                pass
        return _STRING, string_key(value)
    if isinstance(value, dict) and "@value" in value and isinstance(value["@value"], str):
        kind, text = str(value.get("@type", "")).rsplit("/", 1)[-1], value["@value"]
        try:
            if kind == "DateTime":
                return _DATETIME, parse_instant(text).timestamp()
            if kind == "Date":
                return _DATE, dt.date.fromisoformat(text).toordinal()
            if kind == "Time":
                return _TIME, parse_time_seconds(text)
        except ValueError:
            pass
        return _STRING, string_key(text)
    canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return (_ARRAY if isinstance(value, list) else _OBJECT), canonical


def _attribute_target(entity: Mapping[str, Any], path: AttrPath) -> tuple[bool, Any, Any]:
    """(found, value, node) of an attribute path in one entity: the default instance first."""
    found = instances(entity, path.names[0])
    found.sort(key=lambda inst: "datasetId" in inst)
    for instance in found:
        node: Any = instance
        for name in path.names[1:]:
            sub = node.get("sub")
            node = sub.get(name) if isinstance(sub, dict) else None
            if not isinstance(node, dict):
                break
        else:
            if path.member is not None:
                if path.member in node:
                    return True, node[path.member], node
                continue
            kind = node.get("type")
            member = MAIN_MEMBER.get(kind if isinstance(kind, str) else "", "value")
            if kind == "LanguageProperty":
                member = "languageMap"
            if member not in node:
                continue
            value = node[member]
            for key in path.keys:
                if not isinstance(value, dict) or key not in value:
                    break
                value = value[key]
            else:
                return True, value, node
    return False, None, None


def _term_key(
    entity: Mapping[str, Any],
    term: OrderTerm,
    origin: BaseGeometry | None,
    string_key: Callable[[str], Any],
) -> tuple[int, Any]:
    member = term.member
    if member is not None:
        if member not in entity:
            return _ABSENT, 0
        value = entity[member]
        if member in ("type", "scope") and isinstance(value, list) and len(value) == 1:
            value = value[0]
        return _rank(value, string_key, member in ("createdAt", "modifiedAt"))
    found, value, node = _attribute_target(entity, term.path)
    if not found:
        return _ABSENT, 0
    if term.by_distance and origin is not None and node.get("type") == "GeoProperty":
        shape = entity_shape(value)
        if shape is not None:
            return _GEO, geometry_distance_m(origin, shape)
    return _rank(value, string_key, term.path.member in TIME_MEMBERS)


def _compare(a: tuple[int, Any], b: tuple[int, Any], descending: bool) -> int:
    if a == b:
        return 0
    # GeoProperties first by distance, null and absent last, whichever the direction
    if a[0] != b[0] and (_GEO in (a[0], b[0]) or a[0] >= _NULL or b[0] >= _NULL):
        return -1 if a[0] < b[0] else 1
    less = a < b
    if descending:
        less = not less
    return -1 if less else 1


def order_entities(
    entities: Iterable[_E],
    ordering: Ordering,
    string_key: Callable[[str], Any] | None = None,
) -> list[_E]:
    """The entities sorted by ``ordering`` (names resolved), then by id.

    ``string_key`` maps a string to its sort key (a collation); code points by default.
    """
    key_of = string_key or str
    terms = ordering.terms
    keyed = [
        ([_term_key(entity, term, ordering.origin, key_of) for term in terms], entity)
        for entity in entities
    ]

    def compare(left: tuple[list[Any], Any], right: tuple[list[Any], Any]) -> int:
        for term, a, b in zip(terms, left[0], right[0], strict=True):
            result = _compare(a, b, term.direction in ("desc", "dist-desc"))
            if result:
                return result
        ida, idb = left[1].get("id", ""), right[1].get("id", "")
        return int(ida > idb) - int(ida < idb)

    keyed.sort(key=functools.cmp_to_key(compare))
    return [entity for _, entity in keyed]


__all__ = [
    "DIRECTIONS",
    "ENTITY_MEMBERS",
    "OrderTerm",
    "Ordering",
    "order_entities",
    "parse_order_by",
    "parse_ordering",
    "resolve_ordering",
]
