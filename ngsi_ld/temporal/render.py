"""The temporal representations of an Entity (clauses 4.5.6 to 4.5.9, 4.5.19).

From instances already selected and ordered (:mod:`ngsi_ld.temporal.window`,
:mod:`ngsi_ld.temporal.pagination`) to the JSON object a client receives:

- normalized (4.5.7, 4.5.8): each Attribute an array of its instances, each with
  its ``instanceId``; a multi-attribute mixes its datasets in the one array;
- simplified, ``temporalValues`` (4.5.9): each Attribute ``{"type": ..., <member>:
  [[value, time], ...]}``, one such object per datasetId (an array of them when
  there are several).  The member and the shape of its values per kind:
  ``values`` (Property, GeoProperty: the value), ``objects`` (Relationship),
  ``languageMaps`` (``{"languageMap": ...}``), ``vocabs`` (``{"vocab": ...}``),
  ``jsons`` (``{"json": ...}``), ``valueLists`` and ``objectLists`` (the bare
  array), as the ETSI suite reads them (020_12, 020_15, 020_16, 459_01);
- aggregated, ``aggregatedValues`` (4.5.19): each Attribute ``{"type": ...,
  <method>: [[value, start, end], ...]}``, one object per datasetId.

The time of a pair is the queried temporal Property (observedAt by default,
deletedAt for ``timeproperty=deletedAt``).  The Scope (4.5.6) is a Property under
the member ``scope``.  ``sysAttrs`` adds createdAt, modifiedAt and deletedAt to the
normalized instances and the Entity; the queried temporal Property is shown even
without it (ETSI 020_17 expects ``deletedAt``).  ``lang`` (4.15) turns a
LanguageProperty into a Property in that language.  ``pick`` and ``omit`` (4.21)
name Entity members (``id``, ``type``, ``scope``, Attributes).  Names are
compacted by ``compact`` in the same pass, as
:func:`ngsi_ld.representation.render_entity` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ngsi_ld.representation import best_language, render_attribute
from ngsi_ld.temporal.aggregate import AggregatedSeries
from ngsi_ld.temporal.body import SIMPLIFIED_MEMBERS
from ngsi_ld.temporal.instants import format_micros
from ngsi_ld.temporal.model import SCOPE, Instance, TimeProperty

__all__ = ["Compact", "TemporalEntity", "render_temporal"]

#: Maps a name (an expanded IRI) to the name a client sees; None: names stay as they are.
Compact = Callable[[str], str] | None
Format = Literal["normalized", "temporalValues", "aggregatedValues"]
_MEMBERS = ("id", "type", "scope")
# 4.5.9: kinds whose value the simplified pair wraps in {"<main member>": value}
_WRAPPED = {"LanguageProperty": "languageMap", "VocabProperty": "vocab", "JsonProperty": "json"}


@dataclass(frozen=True, slots=True)
class TemporalEntity:
    """What a temporal representation is made of: the Entity record and its
    selected instances (Attribute -> instances, oldest first; :data:`SCOPE` for the
    Scope)."""

    id: str
    types: tuple[str, ...] = ()
    series: Mapping[str, Sequence[Instance]] = field(default_factory=dict)
    created_at: str | None = None
    modified_at: str | None = None
    deleted_at: str | None = None


def render_temporal(
    entity: TemporalEntity,
    *,
    fmt: Format = "normalized",
    timeproperty: TimeProperty = "observedAt",
    sys_attrs: bool = False,
    lang: str | None = None,
    compact: Compact = None,
    pick: set[str] | frozenset[str] | None = None,
    omit: set[str] | frozenset[str] | None = None,
    aggregated: Mapping[str, Sequence[AggregatedSeries]] | None = None,
) -> dict[str, Any]:
    """The temporal representation of ``entity`` in ``fmt``.

    ``aggregated`` (from :func:`ngsi_ld.temporal.aggregate.aggregate`) is what the
    aggregated representation shows.  ``pick`` and ``omit`` hold expanded
    Attribute names and the members id, type and scope.
    """
    omitted = omit or frozenset()

    def shown(member: str) -> bool:
        return member not in omitted and (pick is None or member in pick)

    out: dict[str, Any] = {}
    if shown("id"):
        out["id"] = entity.id
    if entity.types and shown("type"):
        types = [compact(t) for t in entity.types] if compact else list(entity.types)
        out["type"] = types[0] if len(types) == 1 else types
    if sys_attrs:
        for key, value in (("createdAt", entity.created_at), ("modifiedAt", entity.modified_at),
                           ("deletedAt", entity.deleted_at)):
            if value is not None:
                out[key] = value
    if fmt == "aggregatedValues":
        for name, aggregates in (aggregated or {}).items():
            member = "scope" if name == SCOPE else name
            if shown(member) and aggregates:
                out[_name(name, compact)] = _one_or_many([_aggregated(a) for a in aggregates])
        return out
    for name, instances in entity.series.items():
        member = "scope" if name == SCOPE else name
        if not shown(member):
            continue
        if fmt == "temporalValues":
            groups = _simplified(instances, timeproperty, lang, compact)
            out[_name(name, compact)] = _one_or_many(groups) if groups else []
        else:
            out[_name(name, compact)] = [
                _normalized(inst, timeproperty, sys_attrs, lang, compact) for inst in instances
            ]
    return out


def _name(name: str, compact: Compact) -> str:
    if name == SCOPE:
        return "scope"
    return compact(name) if compact else name


def _one_or_many(groups: list[dict[str, Any]]) -> Any:
    return groups[0] if len(groups) == 1 else groups


def _scope_value(value: Any) -> Any:
    # 4.18: one scope is a string, several an array; a removed scope stays [] (020_19)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _normalized(inst: Instance, timeproperty: TimeProperty, sys_attrs: bool,
                lang: str | None, compact: Compact) -> dict[str, Any]:
    if inst.attribute == SCOPE:
        out: dict[str, Any] = {"type": "Property", "value": _scope_value(inst.value)}
        if inst.observed_at is not None:
            out["observedAt"] = inst.observed_at
        if sys_attrs:
            for key, stamp in (("createdAt", inst.created_at), ("modifiedAt", inst.modified_at),
                               ("deletedAt", inst.deleted_at)):
                if stamp is not None:
                    out[key] = stamp
    else:
        internal = inst.to_internal()
        del internal["instanceId"]
        out = render_attribute([internal], sys_attrs=sys_attrs, lang=lang, compact=compact)
    if not sys_attrs and timeproperty != "observedAt" and inst.time(timeproperty) is not None:
        out[timeproperty] = inst.time(timeproperty)
    out["instanceId"] = inst.instance_id
    return out


def _pair_value(inst: Instance, lang: str | None, compact: Compact) -> tuple[str, Any]:
    """(kind shown, first element of the simplified pair) of an instance."""
    kind, value = inst.kind, inst.value
    if inst.attribute == SCOPE:
        return "Property", _scope_value(value)
    if kind == "LanguageProperty" and lang is not None and isinstance(value, dict):
        return "Property", best_language(value, lang)[1]
    if compact is not None:
        if kind == "VocabProperty":
            value = [compact(v) for v in value] if isinstance(value, list) else compact(value)
        elif isinstance(value, dict) and "@type" in value and kind == "Property":
            literal = value["@type"]
            value = {**value, "@type": [compact(t) for t in literal]
                     if isinstance(literal, list) else compact(literal)}
    if kind in _WRAPPED:
        return kind, {_WRAPPED[kind]: value}
    return kind, value


def _simplified(instances: Sequence[Instance], timeproperty: TimeProperty, lang: str | None,
                compact: Compact) -> list[dict[str, Any]]:
    groups: dict[tuple[str | None, str], dict[str, Any]] = {}
    for inst in instances:
        kind, value = _pair_value(inst, lang, compact)
        key = (inst.dataset_id, kind)
        group = groups.get(key)
        if group is None:
            group = {"type": kind}
            if inst.dataset_id is not None:
                group["datasetId"] = inst.dataset_id
            group[SIMPLIFIED_MEMBERS[kind]] = []
            groups[key] = group
        group[SIMPLIFIED_MEMBERS[kind]].append([value, inst.time(timeproperty)])
    return list(groups.values())


def _aggregated(series: AggregatedSeries) -> dict[str, Any]:
    out: dict[str, Any] = {"type": series.kind}
    if series.dataset_id is not None:
        out["datasetId"] = series.dataset_id
    for method, rows in series.results.items():
        out[method] = [[value, format_micros(start), format_micros(end)]
                       for value, start, end in rows]
    return out
