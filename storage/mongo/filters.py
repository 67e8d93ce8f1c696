"""The entity query (ngsi_ld.query) compiled into a MongoDB filter document.

:func:`compile_query` returns a :class:`MongoQuery`: the filter and whether it
is *exact* (selects exactly what :func:`ngsi_ld.query.matches` selects) or only
a superset that the backend post-filters with ``matches`` on each candidate.
Documents follow the schema of ``mongo_schema`` (``_id``, ``type``, ``scope``,
``attrs.<encoded IRI>`` = list of instances, ``attrNames``, ``geo``).

Pushed down exactly: ids, type expressions, ``attrs``, scopeQ, and the q terms
whose value is a number, string, URI or boolean (``==``, ``!=``, ``>``, ``>=``,
``<``, ``<=``, ranges, lists) or a regular expression in a subset both Python's
``regex`` and MongoDB's PCRE read alike, ``attr`` / ``!attr``, sub-attributes,
members (``.observedAt``...), JSON keys (``attr[a.b]``), datasetIds, and
LanguageProperty values in any language (the ``%lv`` field of the schema).

Left to the post-filter (the filter only narrows down the candidates):

* date, time and date-time comparisons (stored strings need not share a format);
* a VocabProperty ordered against a term that has a vocabulary expansion;
* regular expressions outside the common subset (lookarounds, backreferences,
  classes such as ``\\p{L}``, nested quantifiers...);
* every geo-query (``mongo_geo``): MongoDB computes on the sphere, NGSI-LD on
  the plane of longitudes and latitudes, so the geo operator is a top-level
  field of the filter and the exact relation is checked with shapely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ngsi_ld.instances import MAIN_MEMBER
from ngsi_ld.query import (
    ANY_LANGUAGE,
    DEFAULT_DATASET,
    And,
    AttrPath,
    Boolean,
    Comparison,
    EntityQuery,
    Exists,
    Number,
    Or,
    Pattern,
    QExpr,
    QValue,
    Range,
    ScopeAnd,
    ScopeExpr,
    ScopeTerm,
    Text,
    TypeAnd,
    TypeExpr,
    TypeName,
    Uri,
    ValueList,
    any_of_names,
)

from .geo import geo_filter
from .keys import encode_key
from .schema import LANGUAGE_VALUES

Filter = dict[str, Any]

#: the main member of each attribute kind other than Property/GeoProperty (clause 4.9)
_OTHER_MEMBERS = {kind: member for kind, member in MAIN_MEMBER.items()
                  if member != "value" and kind != "LanguageProperty"}
_NOT_VALUE_KINDS = [*_OTHER_MEMBERS, "LanguageProperty"]
_RELATIONSHIPS = ("Relationship", "ListRelationship")
_MONGO_OPS = {"==": "$eq", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
_NEGATED = {"!=": "==", "!~=": "~="}
_NOT_A_LIST: Filter = {"$not": {"$type": "array"}}

MATCH_ALL: Filter = {}


@dataclass(frozen=True, slots=True)
class MongoQuery:
    """A filter document; ``exact`` if no post-filter is needed; the GeoProperty queried."""

    filter: Filter
    exact: bool
    geo_attr: str | None = None


def _and(parts: list[Filter]) -> Filter:
    parts = [p for p in parts if p != MATCH_ALL]
    if not parts:
        return MATCH_ALL
    if len(parts) == 1:
        return parts[0]
    return {"$and": parts}


def _or(parts: list[Filter]) -> Filter:
    if any(p == MATCH_ALL for p in parts):
        return MATCH_ALL
    return parts[0] if len(parts) == 1 else {"$or": parts}


# -- regular expressions ------------------------------------------------------------------

# A pattern both engines read alike: literals, escaped punctuation, '.', classes of
# literals and ranges, anchors, '|', plain groups, and quantifiers on single atoms.
_ATOM = (
    r"(?:\\[^A-Za-z0-9]|\\d|\\D|\[\^?(?:\\[^A-Za-z0-9]|\\d|[^\\\]\[])+\]|[^\\()|*+?{}\[\]^$]|\.)"
)
_QUANT = r"(?:[*+?]|\{\d{1,3}(?:,\d{0,3})?\})?"
_SAFE_REGEX = re.compile(rf"(?:\^|\$|\||\((?!\?)|\)|{_ATOM}{_QUANT})*")


def safe_regex(pattern: str) -> bool:
    """True if MongoDB's PCRE reads ``pattern`` as Python's ``regex`` does (a common subset)."""
    if "\x00" in pattern or _SAFE_REGEX.fullmatch(pattern) is None:
        return False  # MongoDB refuses a NUL in a pattern
    # a quantifier after a group could nest quantifiers (catastrophic backtracking)
    return re.search(r"\)[*+?{]", pattern) is None


# -- entity-level selectors ----------------------------------------------------------------


# 4.17 Entity type selection
def type_filter(expr: TypeExpr) -> Filter:
    """The filter of a type expression over the ``type`` array (exact)."""
    if isinstance(expr, TypeName):
        return {"type": expr.name}
    parts = [type_filter(t) for t in expr.terms]
    names = any_of_names(expr)
    if names is not None:  # A|B|C
        return {"type": {"$in": names}}
    return _and(parts) if isinstance(expr, TypeAnd) else _or(parts)


def _scope_regex(term: ScopeTerm) -> str:
    segments = list(term.segments)
    hashed = bool(segments) and segments[-1] == "#"
    if hashed:
        segments = segments[:-1]
    body = "".join("/" + ("[^/]*" if s == "+" else re.escape(s)) for s in segments)
    if hashed:
        return "^" + body + ("(/|$)" if segments else "")
    return "^" + body + "$"


# 4.19 scopeQ
def scope_filter(expr: ScopeExpr) -> Filter:
    """The filter of a scopeQ expression over the ``scope`` array (exact)."""
    if isinstance(expr, ScopeTerm):
        return {"scope": {"$regex": _scope_regex(expr)}}
    parts = [scope_filter(t) for t in expr.terms]
    return _and(parts) if isinstance(expr, ScopeAnd) else _or(parts)


def _dataset_clause(dataset_ids: tuple[str, ...] | None) -> Filter:
    if dataset_ids is None:
        return MATCH_ALL
    wanted: list[Any] = []
    for dataset in dataset_ids:
        wanted.extend([None, DEFAULT_DATASET] if dataset == DEFAULT_DATASET else [dataset])
    return {"datasetId": {"$in": wanted}}


def _instance_match(attr: str, inner: Filter, dataset_ids: tuple[str, ...] | None) -> Filter:
    """An instance of ``attr`` kept by the datasetId filter satisfies ``inner``."""
    clause = _and([_dataset_clause(dataset_ids), inner])
    if not clause:
        clause = {"type": {"$exists": True}}
    return {"attrs." + encode_key(attr): {"$elemMatch": clause}}


def attrs_filter(names: tuple[str, ...], dataset_ids: tuple[str, ...] | None) -> Filter:
    """The entity has at least one of ``names`` (an instance of them, with datasetIds)."""
    if dataset_ids is None:
        return {"attrNames": {"$in": list(names)}}
    return _or([_instance_match(name, {}, dataset_ids) for name in names])


# -- q terms (4.9) ---------------------------------------------------------------------------


def _scalar(value: QValue) -> Any:
    """The BSON value of a plain scalar, or a sentinel for the post-filter."""
    if isinstance(value, Number | Boolean | Text | Uri):
        return value.value
    raise _NotPushed


class _NotPushed(Exception):
    """The value has no exact MongoDB comparison."""


def _positive(op: str, value: QValue, vocab: bool) -> Filter:
    """The operator document a target value must match for the positive ``op``."""
    if isinstance(value, Pattern):
        if op != "~=" or not safe_regex(value.pattern):
            raise _NotPushed
        return {"$regex": value.pattern}
    if op == "~=":
        raise _NotPushed  # a regex operator with a non-pattern value
    if isinstance(value, Range):
        return {"$gte": _scalar(value.low), "$lte": _scalar(value.high)}
    if isinstance(value, ValueList):
        if op != "==":
            raise _NotPushed
        wanted: list[Any] = []
        for item in value.values:
            wanted.append(_scalar(item))
            if vocab and isinstance(item, Text) and item.vocab_iri:
                wanted.append(item.vocab_iri)
        return {"$in": wanted}
    scalar = _scalar(value)
    if vocab and isinstance(value, Text) and value.vocab_iri:
        if op != "==":
            raise _NotPushed
        return {"$in": [scalar, value.vocab_iri]}
    return {_MONGO_OPS[op]: scalar}


def _matches_value(path: str, cond: Filter, is_range: bool) -> Filter:
    """A target at ``path`` (a value, a list of them, typed literals) satisfies ``cond``."""
    alternatives: list[Filter] = []
    for target in (path, path + ".@value"):
        if is_range:
            # both bounds on one element of a list, or on a value that is not a list; an
            # element that is itself a list never compares (4.9, as the evaluator reads
            # one level of list): MongoDB's $elemMatch already compares such an element
            # as a whole, the guard says so to every engine (mongomock looks inside it)
            alternatives.append({target: {"$elemMatch": {**cond, **_NOT_A_LIST}}})
            alternatives.append({"$and": [{target: {"$not": {"$type": "array"}}}, {target: cond}]})
        else:
            alternatives.append({target: cond})
    return {"$or": alternatives}


def _member_paths(path: AttrPath, prefix: str) -> list[tuple[Filter, str]]:
    """(kind guard, dotted path of the target) per attribute kind the term can address."""
    keys = ".".join(encode_key(k) for k in path.keys)
    suffix = "." + keys if keys else ""
    if path.member is not None:
        return [(MATCH_ALL, prefix + path.member + suffix)]
    found: list[tuple[Filter, str]] = [
        ({prefix + "type": {"$nin": _NOT_VALUE_KINDS}}, prefix + "value" + suffix)
    ]
    for kind, member in _OTHER_MEMBERS.items():
        found.append(({prefix + "type": kind}, prefix + member + suffix))
    language = {prefix + "type": "LanguageProperty"}
    if keys and path.keys != ANY_LANGUAGE:
        found.append((language, prefix + "languageMap" + suffix))
    else:  # 4.9: attr[*] is any language, as no key is
        found.append((language, prefix + LANGUAGE_VALUES))
    return found


def _node_prefix(path: AttrPath) -> str:
    return "".join("sub." + encode_key(name) + "." for name in path.names[1:])


def _language_map(path: AttrPath, prefix: str) -> Filter | None:
    """A LanguageProperty addressed without a key has a map (None if a key is given)."""
    if path.member is not None or (path.keys and path.keys != ANY_LANGUAGE):
        return None
    return {prefix + "type": "LanguageProperty", prefix + "languageMap": {"$type": "object"}}


def _exists_inner(path: AttrPath, prefix: str) -> Filter:
    parts = [
        _and([guard, {target: {"$exists": True}}])
        for guard, target in _member_paths(path, prefix)
        if not target.endswith(LANGUAGE_VALUES)
    ]
    language = _language_map(path, prefix)
    if language is not None:
        parts.append(language)  # 4.9: a LanguageProperty is there when its map is
    return _or(parts)


def _comparison(term: Comparison, datasets: tuple[str, ...] | None) -> tuple[Filter, bool]:
    path, prefix = term.path, _node_prefix(term.path)
    attr = path.names[0]
    negated = term.op in _NEGATED
    op = _NEGATED.get(term.op, term.op)
    is_range = isinstance(term.value, Range)
    parts: list[Filter] = []
    exact = True
    equality = term.op in ("==", "!=")
    for guard, target in _member_paths(path, prefix):
        kind = guard.get(prefix + "type")
        if not equality and path.member is None and kind in _RELATIONSHIPS:
            continue  # 4.9: a relationship's objects only compare with == and !=
        vocab = kind == "VocabProperty" and path.member is None
        try:
            cond = _positive(op, term.value, vocab)
        except _NotPushed:
            exact = False
            parts.append(_and([guard, {target: {"$exists": True}}]))
            continue
        positive = _matches_value(target, cond, is_range)
        if negated:
            # 4.9: '!=' holds on an instance whose values are there and none is equal
            # (two clauses, not one operator document: the same for MongoDB, and mongomock
            # mis-evaluates $exists with $ne on a path through an array)
            present: list[Filter] = [{target: {"$exists": True}}, {target: {"$ne": []}}]
            parts.append(_and([guard, *present, {"$nor": [positive]}]))
        else:
            parts.append(_and([guard, positive]))
    return _instance_match(attr, _or(parts), datasets), exact


def q_filter(expr: QExpr, datasets: tuple[str, ...] | None = None) -> tuple[Filter, bool]:
    """The filter of a q expression, and whether it is exact (else a superset)."""
    if isinstance(expr, And | Or):
        compiled = [q_filter(term, datasets) for term in expr.terms]
        filters = [f for f, _ in compiled]
        exact = all(e for _, e in compiled)
        return (_and(filters) if isinstance(expr, And) else _or(filters)), exact
    if isinstance(expr, Exists):
        present = _instance_match(
            expr.path.names[0], _exists_inner(expr.path, _node_prefix(expr.path)), datasets
        )
        return ({"$nor": [present]} if expr.negated else present), True
    return _comparison(expr, datasets)


# -- the whole query -------------------------------------------------------------------------


def compile_query(query: EntityQuery) -> MongoQuery:
    """The filter selecting what ``matches(entity, query)`` selects (or a superset)."""
    parts: list[Filter] = []
    exact = True
    if query.ids is not None:
        parts.append({"_id": {"$in": list(query.ids)}})
    if query.id_pattern is not None:
        if safe_regex(query.id_pattern):
            parts.append({"_id": {"$regex": query.id_pattern}})
        else:
            exact = False
    if query.type_expr is not None:
        parts.append(type_filter(query.type_expr))
    if query.scope_q is not None:
        parts.append(scope_filter(query.scope_q))
    datasets = None if query.dataset_ids is None else tuple(query.dataset_ids)
    if query.attrs is not None:
        # 4.5.5: the datasetIds choose the view, not the entities that have the attributes
        parts.append(attrs_filter(tuple(query.attrs), None))
    if query.q is not None:
        compiled, q_exact = q_filter(query.q, datasets)
        parts.append(compiled)
        exact = exact and q_exact
    result = _and(parts)
    if query.geo_q is None:
        return MongoQuery(result, exact)
    # the geo operator stays a top-level field ($nearSphere may not be nested)
    geo = geo_filter(query.geo_q)
    combined = dict(geo) if result == MATCH_ALL else {"$and": [result], **geo}
    return MongoQuery(combined, False, query.geo_q.geoproperty)


__all__ = [
    "MATCH_ALL",
    "MongoQuery",
    "attrs_filter",
    "compile_query",
    "geo_filter",
    "q_filter",
    "safe_regex",
    "scope_filter",
    "type_filter",
]
