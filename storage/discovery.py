"""Summaries of stored entities for discovery (clauses 5.7.5 to 5.7.12), as pure functions.

Two ways to the same figures:

* from the entities: :func:`summarize_types` and :func:`summarize_attributes`
  fold every entity (what a store without statistics does: seconds at 100k);
* from statistics kept up to date on write: every write adds
  :func:`stats_delta` of its entity before and after to per-tenant counters
  (``StatKey`` -> count), in the same transaction as the write where the store
  has transactions; :func:`types_from_stats` and :func:`attributes_from_stats`
  fold the counters (a few dozen rows) into the same summaries.

The counters (``StatKey`` = entity type, attribute name, attribute kind):

* ``(T, "", "")``: entities of type ``T``;
* ``(T, A, K)``: instances of attribute ``A`` of kind ``K`` in entities of type ``T``;
* ``("", A, K)``: instances of ``A`` of kind ``K`` over all entities (an entity
  of two types counts once).

``K`` is ``""`` for an instance without a kind string.  Names are expanded IRIs,
never empty, so ``""`` cannot be taken for a name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ngsi_ld.model import Entity

from .helpers import entity_types


@dataclass(slots=True)
class TypeSummary:
    """What entities of one type hold (clauses 5.7.5 to 5.7.8), names expanded."""

    type: str
    entity_count: int = 0
    #: attribute name -> the attribute kinds (Property, Relationship...) seen with it
    attributes: dict[str, set[str]] = field(default_factory=dict)


@dataclass(slots=True)
class AttributeSummary:
    """Where one attribute name occurs (clauses 5.7.9 to 5.7.12), names expanded."""

    name: str
    #: attribute instances with this name, over every entity
    instance_count: int = 0
    kinds: set[str] = field(default_factory=set)
    type_names: set[str] = field(default_factory=set)


#: (entity type, attribute name, attribute kind): see the module docstring
StatKey = tuple[str, str, str]
#: the type of the counters over all entities, and the name of a type's entity counter
ALL = ""


def _attributes(entity: Entity) -> dict[str, list[Any]]:
    # an attribute without instances is no attribute (the model never stores one)
    doc: Any = entity  # read as it is (compiled, a TypedDict's .get() checks its type)
    attrs = doc.get("attrs")
    if not isinstance(attrs, dict):
        return {}
    found = {name: insts if isinstance(insts, list) else [insts] for name, insts in attrs.items()}
    return {name: insts for name, insts in found.items() if insts}


def _kinds(instances: list[Any]) -> set[str]:
    return {
        inst["type"]
        for inst in instances
        if isinstance(inst, dict) and isinstance(inst.get("type"), str)
    }


def summarize_types(
    entities: Iterable[Entity], types: Sequence[str] | None = None
) -> list[TypeSummary]:
    """One TypeSummary per entity type (restricted to ``types`` if given), sorted by type."""
    wanted = None if types is None else set(types)
    found: dict[str, TypeSummary] = {}
    for entity in entities:
        attrs = _attributes(entity)
        for type_name in entity_types(entity):
            if wanted is not None and type_name not in wanted:
                continue
            summary = found.setdefault(type_name, TypeSummary(type_name))
            summary.entity_count += 1
            for name, instances in attrs.items():
                summary.attributes.setdefault(name, set()).update(_kinds(instances))
    return [found[name] for name in sorted(found)]


def summarize_attributes(
    entities: Iterable[Entity], names: Sequence[str] | None = None
) -> list[AttributeSummary]:
    """One AttributeSummary per attribute name (only ``names`` if given), sorted by name."""
    wanted = None if names is None else set(names)
    found: dict[str, AttributeSummary] = {}
    for entity in entities:
        types = entity_types(entity)
        for name, instances in _attributes(entity).items():
            if wanted is not None and name not in wanted:
                continue
            summary = found.setdefault(name, AttributeSummary(name))
            summary.instance_count += len(instances)
            summary.kinds.update(_kinds(instances))
            summary.type_names.update(types)
    return [found[name] for name in sorted(found)]


def _kind(instance: Any) -> str:
    kind = instance.get("type") if isinstance(instance, dict) else None
    return kind if isinstance(kind, str) else ""


def entity_stats(entity: Entity | None, names: Collection[str] | None = None) -> Counter[StatKey]:
    """The counters one entity adds (see the module docstring).

    With ``names``, only those of these attributes, and not the entity counters.
    """
    return Counter(_counts(entity, names))


def _counts(entity: Entity | None, names: Collection[str] | None) -> dict[StatKey, int]:
    """:func:`entity_stats` in a plain dict (every count positive)."""
    out: dict[StatKey, int] = {}
    if entity is None:
        return out
    # counted in a plain dict: Counter's += is several times slower (a creation of an
    # 18-attribute entity counts some 60 keys)
    get = out.get
    types = sorted(entity_types(entity))
    if names is None:
        for type_name in types:
            out[type_name, ALL, ALL] = get((type_name, ALL, ALL), 0) + 1
    for name, instances in _attributes(entity).items():
        if names is not None and name not in names:
            continue
        for instance in instances:
            kind = _kind(instance)
            key = (ALL, name, kind)
            out[key] = get(key, 0) + 1
            for type_name in types:
                key = (type_name, name, kind)
                out[key] = get(key, 0) + 1
    return out


def _same_kinds(before: Entity | None, after: Entity | None, names: Collection[str]) -> bool:
    """True if each attribute of ``names`` has instances of the same kinds, in the same
    order, before and after: the usual write of a value or two moves no counter (and
    is told without counting)."""
    old, new = _attrs_or_none(before), _attrs_or_none(after)
    if old is None or new is None:
        return False
    for name in names:
        a, b = old.get(name), new.get(name)
        if a.__class__ is not list or b.__class__ is not list or len(a) != len(b) \
                or any(_kind(x) != _kind(y) for x, y in zip(a, b, strict=True)):
            return False
    return True


def _attrs_or_none(entity: Entity | None) -> dict[str, Any] | None:
    doc: Any = entity  # read as it is (compiled, a TypedDict's .get() checks its type)
    attrs = None if doc is None else doc.get("attrs")
    return attrs if isinstance(attrs, dict) else None


def stats_delta(
    before: Entity | None, after: Entity | None, changed: Collection[str] | None = None
) -> dict[StatKey, int]:
    """What a write from ``before`` to ``after`` (None: absent) adds to the counters;
    no zero entries.

    ``changed``: the only attributes whose instances may differ, for a write that
    kept the entity's types (most writes change a value or two).
    """
    old_doc: Any = before  # read as they are (compiled, a TypedDict's .get() checks)
    new_doc: Any = after
    if changed is not None and (
        before is None or after is None or old_doc.get("type") != new_doc.get("type")
    ):
        changed = None
    if changed is not None and (not changed or _same_kinds(before, after, changed)):
        return {}
    if before is None:  # a creation: every counter it adds is positive
        return _counts(after, changed)
    delta = entity_stats(after, changed)
    delta.subtract(entity_stats(before, changed))
    return {key: n for key, n in delta.items() if n}


def add_stats(total: dict[StatKey, int], delta: dict[StatKey, int]) -> None:
    """Add ``delta`` to ``total`` in place, dropping the counters that reach zero."""
    for key, n in delta.items():
        value = total.get(key, 0) + n
        if value:
            total[key] = value
        else:
            total.pop(key, None)


def types_from_stats(
    rows: Iterable[tuple[StatKey, int]], types: Sequence[str] | None = None
) -> list[TypeSummary]:
    """The TypeSummary per type (only ``types`` if given) the counters give, sorted by type."""
    wanted = None if types is None else set(types)
    found: dict[str, TypeSummary] = {}
    for (type_name, name, kind), n in rows:
        if type_name == ALL or n <= 0 or (wanted is not None and type_name not in wanted):
            continue
        summary = found.setdefault(type_name, TypeSummary(type_name))
        if name == ALL:
            summary.entity_count += n
            continue
        kinds = summary.attributes.setdefault(name, set())
        if kind:
            kinds.add(kind)
    return [found[name] for name in sorted(found) if found[name].entity_count > 0]


def attributes_from_stats(
    rows: Iterable[tuple[StatKey, int]], names: Sequence[str] | None = None
) -> list[AttributeSummary]:
    """The AttributeSummary per attribute (only ``names`` if given) the counters give."""
    wanted = None if names is None else set(names)
    found: dict[str, AttributeSummary] = {}
    types: dict[str, set[str]] = {}
    for (type_name, name, kind), n in rows:
        if name == ALL or n <= 0 or (wanted is not None and name not in wanted):
            continue
        if type_name != ALL:
            types.setdefault(name, set()).add(type_name)
            continue
        summary = found.setdefault(name, AttributeSummary(name))
        summary.instance_count += n
        if kind:
            summary.kinds.add(kind)
    for name, summary in found.items():
        summary.type_names = types.get(name, set())
    return [found[name] for name in sorted(found)]


__all__ = [
    "ALL", "StatKey", "add_stats", "attributes_from_stats", "entity_stats", "stats_delta",
    "summarize_attributes", "summarize_types", "types_from_stats",
]
