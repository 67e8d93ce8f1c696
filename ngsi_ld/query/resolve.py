"""Expansion of the names in parsed queries with the request's @context.

Queries are parsed with the names the client wrote (terms or IRIs); the store
keeps full IRIs.  :func:`resolve_names` maps every attribute, sub-attribute,
entity type and GeoProperty name through ``expand`` (typically
``ActiveContext.expand_term``).  Compound-value keys (``attr[key]``) and the
members ``observedAt``, ``unitCode``... are not names and stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from typing import overload

from ngsi_ld.query.ast import (
    And,
    AttrPath,
    Comparison,
    Exists,
    Hop,
    Or,
    QExpr,
    QValue,
    Text,
    Uri,
    ValueList,
)
from ngsi_ld.query.geo import GeoQuery
from ngsi_ld.query.model import EntityQuery
from ngsi_ld.query.typeexpr import TypeAnd, TypeExpr, TypeName, TypeOr

Expand = Callable[[str], str]


def _value(value: QValue, expand_vocab: Expand | None) -> QValue:
    if expand_vocab is None:
        return value
    if isinstance(value, Text):
        return Text(value.value, expand_vocab(value.value))
    if isinstance(value, ValueList):
        return ValueList(tuple(_value(v, expand_vocab) for v in value.values))  # type: ignore[misc]
    return value


def _q(expr: QExpr, expand: Expand, expand_vocab: Expand | None) -> QExpr:
    if isinstance(expr, And | Or):
        return type(expr)(tuple(_q(term, expand, expand_vocab) for term in expr.terms))
    via = tuple(
        Hop(expand(hop.relationship), tuple(expand(t) for t in hop.types))
        for hop in expr.path.via
    )
    path = AttrPath(
        tuple(expand(name) for name in expr.path.names), expr.path.member, expr.path.keys, via
    )
    if isinstance(expr, Exists):
        return Exists(path, expr.negated)
    return Comparison(path, expr.op, _value(expr.value, expand_vocab))


def _expanded_value(value: QValue, expand: Expand) -> QValue:
    if isinstance(value, Text | Uri):
        return Uri(expand(value.value))
    if isinstance(value, ValueList):
        return ValueList(tuple(_expanded_value(v, expand) for v in value.values))  # type: ignore[misc]
    return value


# 4.9 expandValues
def expand_values(expr: QExpr, names: Collection[str], expand: Expand) -> QExpr:
    """The q expression with the values of terms on ``names`` expanded into URIs.

    ``names`` are attribute names as the client wrote them (``expandValues``), so
    this runs before :func:`resolve_names`; strings and unquoted terms compared
    with those attributes become the URIs ``expand`` maps them to.
    """
    if not names:
        return expr
    if isinstance(expr, And | Or):
        return type(expr)(tuple(expand_values(term, names, expand) for term in expr.terms))
    if isinstance(expr, Comparison) and expr.path.names[0] in names and expr.path.member is None:
        return Comparison(expr.path, expr.op, _expanded_value(expr.value, expand))
    return expr


def _types(expr: TypeExpr, expand: Expand) -> TypeExpr:
    if isinstance(expr, TypeName):
        return TypeName(expand(expr.name))
    return type(expr)(tuple(_types(term, expand) for term in expr.terms))


@overload
def resolve_names(expr: QExpr, expand: Expand, expand_vocab: Expand | None = None) -> QExpr: ...
@overload
def resolve_names(
    expr: TypeExpr, expand: Expand, expand_vocab: Expand | None = None
) -> TypeExpr: ...
@overload
def resolve_names(
    expr: GeoQuery, expand: Expand, expand_vocab: Expand | None = None
) -> GeoQuery: ...
@overload
def resolve_names(
    expr: EntityQuery, expand: Expand, expand_vocab: Expand | None = None
) -> EntityQuery: ...
def resolve_names(
    expr: QExpr | TypeExpr | GeoQuery | EntityQuery,
    expand: Expand,
    expand_vocab: Expand | None = None,
) -> QExpr | TypeExpr | GeoQuery | EntityQuery:
    """The same query with every name passed through ``expand``.

    ``expand_vocab``, if given, expands quoted strings as vocabulary terms
    (``@vocab``-style), so that ``q=category=="commercial"`` also matches a
    VocabProperty stored as the IRI of ``commercial``; the printed query is
    unchanged.  Accepts a q AST, a type expression, a GeoQuery or a whole
    EntityQuery (scopeQ has no names).
    """
    if isinstance(expr, EntityQuery):
        return replace(
            expr,
            type_expr=None if expr.type_expr is None else _types(expr.type_expr, expand),
            attrs=None if expr.attrs is None else tuple(expand(a) for a in expr.attrs),
            q=None if expr.q is None else _q(expr.q, expand, expand_vocab),
            geo_q=None
            if expr.geo_q is None
            else expr.geo_q.with_geoproperty(expand(expr.geo_q.geoproperty)),
        )
    if isinstance(expr, GeoQuery):
        return expr.with_geoproperty(expand(expr.geoproperty))
    if isinstance(expr, TypeName | TypeAnd | TypeOr):
        return _types(expr, expand)
    return _q(expr, expand, expand_vocab)
