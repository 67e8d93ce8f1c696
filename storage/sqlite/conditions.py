"""SQL conditions for the selectors the SQLite indexes answer (see ``sqlite_index``).

Each function writes a condition on an ``entities`` row aliased ``e`` (EXISTS
lookups on ``entity_types`` and ``attr_values``, correlated
on the id, keyed by the number of the tenant's name in ``sqlite_names``),
appends its parameters, and says whether the condition is exact
or only selects a superset that ``ngsi_ld.query.matches`` must narrow.
:mod:`sqlite_query` combines them into plans.
"""

from __future__ import annotations

from typing import Any

import orjson

from ngsi_ld.query import (
    And,
    Comparison,
    Exists,
    Number,
    Or,
    QExpr,
    Range,
    Text,
    TypeAnd,
    TypeExpr,
    TypeName,
    Uri,
    ValueList,
)

from .index import sql_number
from .names import NID

_ORDER_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<="}


def json_list(values: Any) -> str:
    return orjson.dumps(list(values)).decode()


# 4.17 Entity type selection, as lookups on entity_types
def type_sql(tenant: str, expr: TypeExpr, params: list[Any]) -> str:
    if isinstance(expr, TypeName):
        params += (tenant, expr.name)
        return f"EXISTS (SELECT 1 FROM entity_types x WHERE x.type = {NID} AND x.id = e.id)"
    joiner = " AND " if isinstance(expr, TypeAnd) else " OR "
    return "(" + joiner.join(type_sql(tenant, term, params) for term in expr.terms) + ")"


def attr_exists(tenant: str, name: str, params: list[Any]) -> str:
    params += (tenant, name)
    # an attribute has at least one row, a value or the marker (sqlite_index.MARKER)
    return f"EXISTS (SELECT 1 FROM attr_values a WHERE a.attr = {NID} AND a.id = e.id)"


def _equal(value: Any, params: list[Any]) -> str | None:
    """The condition on ``v.val`` for ``== value``; None if it cannot be pushed down."""
    if isinstance(value, Number):
        params.append(sql_number(value.value))
        return "v.val = ?"
    if isinstance(value, Uri):
        params.append(value.value)
        return "v.val = ?"
    if isinstance(value, Text):
        params.append(value.value)
        if value.vocab_iri is None or value.vocab_iri == value.value:
            return "v.val = ?"
        # a VocabProperty also matches the vocabulary expansion of the string
        params.append(value.vocab_iri)
        return "(v.val = ? OR (v.vocab = 1 AND v.val = ?))"
    return None


def value_sql(expr: Comparison, params: list[Any]) -> tuple[str | None, bool]:
    """The condition on ``v.val`` for a comparison term, and whether it is exact."""
    op, value = expr.op, expr.value
    if op == "==":
        if isinstance(value, ValueList):
            local: list[Any] = []
            parts = [_equal(item, local) for item in value.values]
            if any(part is None for part in parts):
                return None, False
            params.extend(local)
            return "(" + " OR ".join(p for p in parts if p) + ")", True
        if isinstance(value, Range):
            low, high = value.low, value.high
            if isinstance(low, Number) and isinstance(high, Number):
                params.extend((sql_number(low.value), sql_number(high.value)))
                return "(v.val >= ? AND v.val <= ?)", True
            return None, False
        cond = _equal(value, params)
        return cond, cond is not None
    sql_op = _ORDER_OPS.get(op)
    if sql_op is None:
        return None, False
    if isinstance(value, Number):
        params.append(sql_number(value.value))
        # every string sorts after every number: keep the numbers only
        return f"(v.val {sql_op} ? AND v.val < '')", True
    if isinstance(value, Text | Uri):
        params.append(value.value)
        # strings only: not the numbers before them, nor the markers (BLOBs) after
        cond = f"(v.val {sql_op} ? AND v.val >= '' AND v.val < x'')"
        iri = value.vocab_iri if isinstance(value, Text) else None
        if iri is None or iri == value.value:
            # not exact: the objects of relationships are indexed, and never match (4.9)
            return cond, False
        if op in (">=", "<="):
            params.append(iri)
            cond = f"({cond} OR (v.vocab = 1 AND v.val = ?))"
        return cond, False
    return None, False


# 4.9 NGSI-LD Query Language: the terms the indexes can answer
def q_sql(tenant: str, expr: QExpr, params: list[Any]) -> tuple[str | None, bool]:
    """A condition selecting a superset of the entities ``expr`` selects (None: all)."""
    if isinstance(expr, And | Or):
        local: list[Any] = []
        parts = [q_sql(tenant, term, local) for term in expr.terms]
        exact = all(ok for _, ok in parts)
        conds = [cond for cond, _ in parts if cond is not None]
        if isinstance(expr, Or) and len(conds) < len(parts):
            return None, False
        if not conds:
            return None, False
        params.extend(local)
        joiner = " AND " if isinstance(expr, And) else " OR "
        return "(" + joiner.join(conds) + ")", exact
    path = expr.path
    simple = len(path.names) == 1 and path.member is None and not path.keys
    if isinstance(expr, Exists):
        if expr.negated:
            if not simple:
                return None, False
            return "NOT " + attr_exists(tenant, path.names[0], params), True
        return attr_exists(tenant, path.names[0], params), simple
    if simple:
        local = [tenant, path.names[0]]
        cond, exact = value_sql(expr, local)
        if cond is not None:
            params.extend(local)
            return (
                f"EXISTS (SELECT 1 FROM attr_values v WHERE v.attr = {NID}"
                f" AND v.id = e.id AND {cond})",
                exact,
            )
    # every term needs its attribute: that much the index can check
    return attr_exists(tenant, path.names[0], params), False


__all__ = ["attr_exists", "json_list", "q_sql", "type_sql", "value_sql"]
