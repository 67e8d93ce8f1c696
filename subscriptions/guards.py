"""Conditions a subscription puts on an entity that an index can look up (clause 5.11).

A change concerns a subscription only if the entity (its state after the change,
else before) satisfies the subscription's ``q`` and ``geoQ`` and is named by one
of its selectors.  Some of these necessary conditions are keys the entity either
has or not, so the subscriptions of one index slot can be filed under them:

* a top-level term ``attr==N`` of ``q``, ``N`` a number (4.9): some instance of
  ``attr`` holds the number ``N`` (:func:`ngsi_ld.query.equal_numbers`);
* the literal prefix of the ``idPattern`` of a subscription's only selector: the
  entity id starts with it (an anchored pattern, :func:`literal_prefix`);
* the bounding box of a ``geoQ`` (:func:`ngsi_ld.query.bbox_for`): a geometry of
  its GeoProperty has a bounding box meeting it; boxes are looked up by the cells
  of a grid of :data:`CELL` degrees;
* ``watchedAttributes`` (5.11, ``Matcher._triggered``): one of them is an attribute
  the change touched, or, for an entity created or deleted, one of its attributes.

:class:`Guards` files each subscription key under one such condition, or none
(*open*), and :meth:`Guards.selected` answers the keys whose condition an entity
meets: a superset of the subscriptions concerned, each then evaluated in full
(``Matcher.concerns``).  With 10,000 subscriptions on one entity type, an update
is then matched against a handful of them instead of thousands.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ngsi_ld.query import And, Comparison, EntityQuery, Number, bbox_for, equal_numbers, instances
from storage.helpers import literal_prefix

#: the grid of geoQ boxes, in degrees (about 1.1 km of latitude)
CELL = 0.01
#: a box over more cells is not filed by cells (its subscription stays open)
MAX_CELLS = 64


@dataclass(frozen=True, slots=True)
class NumberTerm:
    """``q`` holds only if some instance of ``name`` holds ``value``."""

    name: str
    value: int | float


@dataclass(frozen=True, slots=True)
class IdPrefix:
    """The entity id must start with ``prefix``."""

    prefix: str


@dataclass(frozen=True, slots=True)
class GeoCells:
    """A geometry of ``geoproperty`` must have a bounding box within ``cells``."""

    geoproperty: str
    cells: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Watched:
    """An attribute of ``names`` is changed by the write, or is one of the entity's."""

    names: frozenset[str]


Guard = NumberTerm | IdPrefix | GeoCells | Watched


def _cells(box: tuple[float, float, float, float]) -> list[tuple[int, int]] | None:
    minx, miny, maxx, maxy = box
    if not all(math.isfinite(v) for v in box):
        return None
    xs = range(math.floor(minx / CELL), math.floor(maxx / CELL) + 1)
    ys = range(math.floor(miny / CELL), math.floor(maxy / CELL) + 1)
    if len(xs) * len(ys) > MAX_CELLS:
        return None
    return [(x, y) for x in xs for y in ys]


def guard_of(selectors: tuple[Any, ...], filters: EntityQuery | None,
             watched: frozenset[str] | None = None) -> Guard | None:
    """The one condition a subscription is filed under, or None (open)."""
    q = filters.q if filters is not None else None
    for term in (q.terms if isinstance(q, And) else (q,)) if q is not None else ():
        if (isinstance(term, Comparison) and term.op == "==" and isinstance(term.value, Number)
                and len(term.path.names) == 1 and term.path.member is None
                and not term.path.keys and not term.path.via
                and not isinstance(term.value.value, bool)):
            return NumberTerm(term.path.names[0], term.value.value)
    if len(selectors) == 1 and selectors[0].id is None and selectors[0].id_pattern:
        prefix = literal_prefix(selectors[0].id_pattern)
        if prefix:
            return IdPrefix(prefix)
    geo = filters.geo_q if filters is not None else None
    if geo is not None:
        box = bbox_for(geo)
        cells = _cells(box) if box is not None else None
        if cells is not None:
            return GeoCells(geo.geoproperty, tuple(cells))
    return Watched(watched) if watched else None


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, list | tuple):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value
    else:
        raise ValueError("not a coordinate")


def _entity_cells(entity: Mapping[str, Any], geoproperty: str) -> set[tuple[int, int]] | None:
    """The cells the geometries of ``geoproperty`` meet; None: unknown or too many
    (every subscription filed by cells is then selected)."""
    found: set[tuple[int, int]] = set()
    for instance in instances(entity, geoproperty):
        value = instance.get("value")
        coordinates = value.get("coordinates") if isinstance(value, dict) else None
        try:
            flat = list(_numbers(coordinates))
        except ValueError:
            return None
        if len(flat) < 2 or len(flat) % 2:
            return None
        cells = _cells((min(flat[0::2]), min(flat[1::2]), max(flat[0::2]), max(flat[1::2])))
        if cells is None:
            return None
        found.update(cells)
    return found


class Guards:
    """The keys of one index slot, filed by their guard (see the module docstring)."""

    __slots__ = ("cells", "geo_all", "numbers", "open", "prefixes", "watched")

    def __init__(self) -> None:
        self.open: set[str] = set()
        #: attribute -> number -> keys
        self.numbers: dict[str, dict[int | float, set[str]]] = {}
        #: prefix length -> prefix -> keys
        self.prefixes: dict[int, dict[str, set[str]]] = {}
        #: GeoProperty -> cell -> keys, and every key filed under the GeoProperty
        self.cells: dict[str, dict[tuple[int, int], set[str]]] = {}
        self.geo_all: dict[str, set[str]] = {}
        #: attribute -> the keys watching it
        self.watched: dict[str, set[str]] = {}

    def _buckets(self, guard: Guard | None) -> list[tuple[dict[Any, set[str]], Any]]:
        if guard is None:
            return []
        if isinstance(guard, NumberTerm):
            return [(self.numbers.setdefault(guard.name, {}), guard.value)]
        if isinstance(guard, IdPrefix):
            return [(self.prefixes.setdefault(len(guard.prefix), {}), guard.prefix)]
        if isinstance(guard, Watched):
            return [(self.watched, name) for name in guard.names]
        grid = self.cells.setdefault(guard.geoproperty, {})
        return [(grid, cell) for cell in guard.cells] + [(self.geo_all, guard.geoproperty)]

    def add(self, key: str, guard: Guard | None) -> None:
        if guard is None:
            self.open.add(key)
        for table, slot in self._buckets(guard):
            table.setdefault(slot, set()).add(key)

    def discard(self, key: str, guard: Guard | None) -> None:
        self.open.discard(key)
        for table, slot in self._buckets(guard):
            keys = table.get(slot)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del table[slot]

    def selected(self, entity_id: str, entity: Mapping[str, Any],
                 changed: Iterable[str]) -> set[str]:
        """The keys whose guard ``entity`` (the state matched) and the attributes the
        write ``changed`` meet: a superset of the subscriptions the change concerns."""
        found = set(self.open)
        if self.watched:
            attrs = entity.get("attrs")
            for names in (changed, attrs if isinstance(attrs, dict) else ()):
                for name in names:
                    keys = self.watched.get(name)
                    if keys:
                        found |= keys
        for name, by_value in self.numbers.items():
            if by_value:
                for number in equal_numbers(entity, name):
                    keys = by_value.get(number)
                    if keys:
                        found |= keys
        for length, by_prefix in self.prefixes.items():
            keys = by_prefix.get(entity_id[:length])
            if keys:
                found |= keys
        for geoproperty, grid in self.cells.items():
            cells = _entity_cells(entity, geoproperty)
            if cells is None:
                found |= self.geo_all.get(geoproperty, set())
                continue
            for cell in cells:
                keys = grid.get(cell)
                if keys:
                    found |= keys
        return found


__all__ = ["CELL", "GeoCells", "Guard", "Guards", "IdPrefix", "NumberTerm", "Watched", "guard_of"]
