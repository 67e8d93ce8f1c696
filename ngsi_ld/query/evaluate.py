"""In-memory evaluation of entity queries over the internal expanded entity form.

Attribute names in the query must already be resolved to the IRIs the store
uses (:func:`ngsi_ld.query.resolve_names`).  The target value of a q term
(clause 4.9) depends on the attribute kind:

=================  ==========================================================
Property           ``value``; a typed literal ``{"@type", "@value"}`` by its ``@value``
GeoProperty        ``value`` (the GeoJSON object; keys reach into it)
Relationship       ``object`` (a URI, or a list of URIs)
LanguageProperty   every string of the ``languageMap`` (``attr[en]`` picks one language,
                   ``attr[*]`` any)
VocabProperty      ``vocab`` (an IRI; a string matches its IRI or its expansion)
JsonProperty       ``json``
ListProperty       ``valueList`` (a list)
ListRelationship   ``objectList`` (a list of URIs)
=================  ==========================================================

A list target matches ``==``, ``>``... and ``~=`` if any element does, and
``!=`` / ``!~=`` if no element matches the positive operator.  Values of
different types never compare: ``==`` and ordering are false, ``!=`` is true
("considered unequal", clause 4.9).  A term on a missing attribute is false
whatever the operator; a relationship's objects only compare with ``==`` and
``!=``.  A multi-attribute matches if any of its instances does (only the
instances the ``dataset_ids`` filter keeps).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from ngsi_ld.instances import MAIN_MEMBER
from ngsi_ld.query import regexes
from ngsi_ld.query.ast import (
    And,
    AttrPath,
    Boolean,
    Comparison,
    Date,
    DateTime,
    Exists,
    Number,
    Or,
    Pattern,
    QExpr,
    QValue,
    Range,
    Scalar,
    Text,
    Time,
    Uri,
    ValueList,
    parse_instant,
    parse_time_seconds,
)
from ngsi_ld.query.geo import GeoQuery, geo_matches
from ngsi_ld.query.model import DEFAULT_DATASET, EntityQuery
from ngsi_ld.query.scope import matches_scope
from ngsi_ld.query.typeexpr import matches_types

_NEGATED = {"!=": "==", "!~=": "~="}
_RELATIONSHIPS = ("Relationship", "ListRelationship")
#: ``attr[*]``: a LanguageProperty's strings in any language (4.9)
ANY_LANGUAGE = ("*",)
_MISSING = object()


class _VocabIri(str):
    """A ``vocab`` IRI: equal to a Text whose vocabulary expansion is this IRI."""

    __slots__ = ()


def instances(
    entity: Mapping[str, Any], name: str, dataset_ids: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The instances of attribute ``name`` the datasetId filter keeps (maybe none)."""
    attrs = entity.get("attrs")
    found = attrs.get(name) if isinstance(attrs, dict) else None
    if isinstance(found, dict):
        found = [found]
    if not isinstance(found, list):
        return []
    kept = [inst for inst in found if isinstance(inst, dict)]
    if dataset_ids is not None:
        wanted = set(dataset_ids)
        kept = [inst for inst in kept if inst.get("datasetId", DEFAULT_DATASET) in wanted]
    return kept


def _node(instance: dict[str, Any], subs: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = instance
    for name in subs:
        sub = node.get("sub")
        node = sub.get(name) if isinstance(sub, dict) else None
        if not isinstance(node, dict):
            return None
    found: dict[str, Any] = node
    return found


def _walk(value: Any, keys: tuple[str, ...]) -> list[Any]:
    found = [value]
    for key in keys:
        step: list[Any] = []
        for item in found:
            candidates = item if isinstance(item, list) else [item]
            for candidate in candidates:
                if isinstance(candidate, dict) and key in candidate:
                    step.append(candidate[key])
        found = step
    return found


def _targets(node: dict[str, Any], path: AttrPath) -> list[Any] | None:
    """The values a term compares against in one attribute node; None if absent."""
    if path.member is not None:
        return [node[path.member]] if path.member in node else None
    kind = node.get("type")
    if kind == "LanguageProperty":
        lang_map = node.get("languageMap")
        if not isinstance(lang_map, dict):
            return None
        if path.keys and path.keys != ANY_LANGUAGE:
            found = _walk(lang_map, path.keys)
            return found or None
        # 4.9: attr[*] (or no language) targets the strings of every language
        return [s for v in lang_map.values() for s in (v if isinstance(v, list) else [v])]
    member = MAIN_MEMBER.get(kind if isinstance(kind, str) else "", "value")
    value = node.get(member, _MISSING)
    if value is _MISSING:
        return None
    if kind == "VocabProperty":
        value = [_VocabIri(v) if isinstance(v, str) else v for v in _as_list(value)]
    found = _walk(value, path.keys) if path.keys else [value]
    return found or None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _flatten(found: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in found:
        for item in _as_list(value):
            if isinstance(item, dict) and "@value" in item:
                item = item["@value"]
            out.append(item)
    return out


def _term_values(
    entity: Mapping[str, Any],
    path: AttrPath,
    dataset_ids: Iterable[str] | None,
    equality: bool = True,
) -> list[list[Any]]:
    """Per instance that has the path, the flattened target values.

    Without ``equality`` (an operator other than == and !=) the objects of
    relationships are left out: they never match (4.9).
    """
    result: list[list[Any]] = []
    for instance in instances(entity, path.names[0], dataset_ids):
        node = _node(instance, path.names[1:])
        if node is None:
            continue
        if not equality and path.member is None and node.get("type") in _RELATIONSHIPS:
            continue
        found = _targets(node, path)
        if found is not None:
            result.append(_flatten(found))
    return result


def equal_numbers(entity: Mapping[str, Any], name: str) -> set[int | float]:
    """The numbers a term ``name==N`` compares ``N`` with, over every instance of the
    attribute ``name``: the term (and a q of which it is a top-level conjunct) holds
    only if ``N`` is one of them (used to index subscriptions by such terms)."""
    return {
        value
        for values in _term_values(entity, AttrPath((name,)), None)
        for value in values
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


# -- comparisons --------------------------------------------------------------------------


def _key(query: Scalar, target: Any) -> tuple[Any, Any] | None:
    """The query and target values in one comparable domain, or None if types differ."""
    if isinstance(query, Number):
        if isinstance(target, int | float) and not isinstance(target, bool):
            return query.value, target
        return None
    if isinstance(query, Boolean):
        return (query.value, target) if isinstance(target, bool) else None
    if not isinstance(target, str):
        return None
    if isinstance(query, Text):
        if isinstance(target, _VocabIri) and query.vocab_iri == target:
            return target, target
        return query.value, str(target)
    if isinstance(query, Uri):
        return query.value, str(target)
    try:
        if isinstance(query, DateTime):
            return query.instant, parse_instant(target)
        if isinstance(query, Date):
            return query.date, dt.date.fromisoformat(target)
        if isinstance(query, Time):
            return query.seconds, parse_time_seconds(target)
    except ValueError:
        return None
    return None


def _compare(op: str, query: QValue, target: Any) -> bool:
    if isinstance(query, Pattern):
        return isinstance(target, str) and regexes.search(query.pattern, target)
    if isinstance(query, ValueList):
        return any(_compare(op, value, target) for value in query.values)
    if isinstance(query, Range):
        return _compare(">=", query.low, target) and _compare("<=", query.high, target)
    pair = _key(query, target)
    if pair is None:
        return False
    q, t = pair
    try:
        if op == "==":
            return bool(t == q)
        if op == ">":
            return bool(t > q)
        if op == ">=":
            return bool(t >= q)
        if op == "<":
            return bool(t < q)
        return bool(t <= q)
    except TypeError:
        return False


def _term(expr: Comparison, entity: Mapping[str, Any],
          dataset_ids: Iterable[str] | None) -> bool:
    positive = _NEGATED.get(expr.op)
    equality = expr.op in ("==", "!=")
    for values in _term_values(entity, expr.path, dataset_ids, equality):
        if positive is None:
            if any(_compare(expr.op, expr.value, v) for v in values):
                return True
        elif values and not any(_compare(positive, expr.value, v) for v in values):
            return True
    return False


# 4.9 NGSI-LD Query Language: evaluation
def match_q(expr: QExpr, entity: Mapping[str, Any],
            dataset_ids: Iterable[str] | None = None) -> bool:
    """True if the entity (internal expanded form) satisfies the q expression."""
    if dataset_ids is not None:
        dataset_ids = tuple(dataset_ids)
    if isinstance(expr, And):
        return all(match_q(term, entity, dataset_ids) for term in expr.terms)
    if isinstance(expr, Or):
        return any(match_q(term, entity, dataset_ids) for term in expr.terms)
    if isinstance(expr, Exists):
        present = bool(_term_values(entity, expr.path, dataset_ids))
        return present != expr.negated
    return _term(expr, entity, dataset_ids)


def match_geo(
    query: GeoQuery, entity: Mapping[str, Any], dataset_ids: Iterable[str] | None = None
) -> bool:
    """True if an instance of the query's GeoProperty satisfies the geo-query."""
    return any(
        geo_matches(query, instance.get("value"))
        for instance in instances(entity, query.geoproperty, dataset_ids)
    )


def matches(entity: Mapping[str, Any], query: EntityQuery) -> bool:
    """True if the entity (internal expanded form) is selected by every selector of ``query``."""
    entity_id = entity.get("id")
    if query.ids is not None and entity_id not in query.ids:
        return False
    if query.id_pattern is not None and not (
        isinstance(entity_id, str) and regexes.search(query.id_pattern, entity_id)
    ):
        return False
    if query.type_expr is not None and not matches_types(query.type_expr, entity.get("type") or []):
        return False
    if query.scope_q is not None and not matches_scope(query.scope_q, entity.get("scope")):
        return False
    datasets = query.dataset_ids
    # 4.5.5: datasetId chooses which instances are shown, not which entities have attrs
    if query.attrs is not None and not any(instances(entity, name) for name in query.attrs):
        return False
    if query.q is not None and not match_q(query.q, entity, datasets):
        return False
    return query.geo_q is None or match_geo(query.geo_q, entity, datasets)
