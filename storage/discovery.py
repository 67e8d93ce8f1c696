"""Summaries of stored entities for discovery (clauses 5.7.5 to 5.7.12), as pure functions.

Backends that cannot answer discovery from indexes read the entities and fold
them with these functions, so that every backend reports the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def _attributes(entity: Entity) -> dict[str, list[Any]]:
    attrs = entity.get("attrs")
    if not isinstance(attrs, dict):
        return {}
    return {name: insts if isinstance(insts, list) else [insts] for name, insts in attrs.items()}


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


__all__ = ["summarize_attributes", "summarize_types"]
