"""What Context Sources answered to discovery (5.7.5 to 5.7.10, 4.3.6), read and merged
with this broker's own summaries.

Each answer comes with the @context its names are written in; every name is
expanded with it, so a type or attribute the broker and a source both know is
one entry whatever the two contexts call it.  Merged summaries add the counts
(``entityCount``, ``attributeCount``; ``broker.service.discovery`` replaces a sum
by the count of distinct entities or instances when the sources can say which
they hold) and unite the names and attribute kinds.  Anything in an answer that is not the
payload of the operation is skipped: a source never makes the answer fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ngsi_ld.jsonld import ActiveContext
from storage.base import AttributeSummary, TypeSummary

__all__ = [
    "attribute_names", "attribute_summaries", "merge_attributes", "merge_types", "type_names",
    "type_summaries",
]

Answers = Sequence[tuple[Any, ActiveContext]]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _iri(ctx: ActiveContext, item: dict[str, Any], member: str) -> str | None:
    """The expanded name of a type or attribute object: its ``id`` when an IRI (5.2.25,
    5.2.28), else its name member expanded."""
    ident = item.get("id")
    if isinstance(ident, str) and "://" in ident:
        return ident
    name = item.get(member)
    return ctx.expand_term(name) if isinstance(name, str) else None


def _objects(data: Any) -> list[dict[str, Any]]:
    items = data if isinstance(data, list) else [data]
    return [item for item in items if isinstance(item, dict)]


def _listed(answers: Answers, member: str) -> set[str]:
    """The names every answer lists under ``member``, expanded with its @context."""
    out: set[str] = set()
    for data, ctx in answers:
        for item in _objects(data):
            out.update(ctx.expand_term(n) for n in _strings(item.get(member)))
    return out


def type_names(answers: Answers) -> set[str]:
    """The types of EntityTypeLists (5.2.24), expanded."""
    return _listed(answers, "typeList")


def type_summaries(answers: Answers) -> list[TypeSummary]:
    """EntityTypes (5.2.25) and EntityTypeInfos (5.2.26) as summaries, names expanded."""
    out: list[TypeSummary] = []
    for data, ctx in answers:
        for item in _objects(data):
            name = _iri(ctx, item, "typeName")
            if name is None:
                continue
            count = item.get("entityCount")
            summary = TypeSummary(name, count if type(count) is int else 0)
            for attr in _strings(item.get("attributeNames")):
                summary.attributes.setdefault(ctx.expand_term(attr), set())
            details = item.get("attributeDetails")
            for detail in _objects(details) if isinstance(details, list) else ():
                attr_name = _iri(ctx, detail, "attributeName")
                if attr_name is not None:
                    summary.attributes.setdefault(attr_name, set()).update(
                        _strings(detail.get("attributeTypes")))
            out.append(summary)
    return out


def attribute_names(answers: Answers) -> set[str]:
    """The attributes of AttributeLists (5.2.27), expanded."""
    return _listed(answers, "attributeList")


def attribute_summaries(answers: Answers) -> list[AttributeSummary]:
    """Attributes (5.2.28) as summaries, names expanded."""
    out: list[AttributeSummary] = []
    for data, ctx in answers:
        for item in _objects(data):
            name = _iri(ctx, item, "attributeName")
            if name is None:
                continue
            count = item.get("attributeCount")
            out.append(AttributeSummary(
                name, count if type(count) is int else 0,
                set(_strings(item.get("attributeTypes"))),
                {ctx.expand_term(t) for t in _strings(item.get("typeNames"))}))
    return out


def merge_types(*parts: Iterable[TypeSummary]) -> list[TypeSummary]:
    """One summary per type, sorted by type: counts added, attributes and kinds united."""
    merged: dict[str, TypeSummary] = {}
    for part in parts:
        for summary in part:
            into = merged.get(summary.type)
            if into is None:
                merged[summary.type] = TypeSummary(summary.type, summary.entity_count, {
                    k: set(v) for k, v in summary.attributes.items()})
                continue
            into.entity_count += summary.entity_count
            for name, kinds in summary.attributes.items():
                into.attributes.setdefault(name, set()).update(kinds)
    return [merged[k] for k in sorted(merged)]


def merge_attributes(*parts: Iterable[AttributeSummary]) -> list[AttributeSummary]:
    """One summary per attribute, sorted by name: counts added, kinds and types united."""
    merged: dict[str, AttributeSummary] = {}
    for part in parts:
        for summary in part:
            into = merged.get(summary.name)
            if into is None:
                merged[summary.name] = AttributeSummary(summary.name, summary.instance_count,
                                                        set(summary.kinds),
                                                        set(summary.type_names))
                continue
            into.instance_count += summary.instance_count
            into.kinds |= summary.kinds
            into.type_names |= summary.type_names
    return [merged[k] for k in sorted(merged)]
