"""Entity queries on the SQLite store: what SQL can select, then ``matches`` in Python.

:func:`compile_query` turns an :class:`EntityQuery` into one SELECT over the
indexes (see ``sqlite_index``) that returns a superset of the matching
entities in id order:

* the rows come from the most selective index available: the id list, the
  R*Tree of geometries (``bbox_for``), the ``entity_types`` key of a type, or
  the entities key of the tenant; an ``idPattern`` with a literal prefix is a
  key range;
* type expressions, ``attrs`` and the simple q terms (``attr op number|string``,
  ``attr``, ``!attr``, joined by ``;`` and ``|``) become EXISTS lookups on the
  index tables, correlated on the id, so rows stream in id order;
* the rest (scopeQ, geo predicates, dates, patterns, sub-attributes...) is left
  to :func:`ngsi_ld.query.matches`, evaluated on the decoded candidates.

When the SQL is exact (nothing is left to Python) the database pages and
counts by itself and only the page is decoded; otherwise candidates are
decoded one by one and the scan stops after ``offset + limit`` matches (all are
needed for a count).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from ngsi_ld.query import (
    And,
    Comparison,
    EntityQuery,
    Exists,
    Number,
    Or,
    QExpr,
    Range,
    Text,
    TypeAnd,
    TypeExpr,
    TypeName,
    TypeOr,
    Uri,
    ValueList,
    bbox_for,
    matches,
)
from ngsi_ld.query.regexes import search

from .base import Entity
from .common import literal_prefix, prefix_upper_bound
from .sqlite_index import sql_number
from .versioned import Versioned, Wanted

_ORDER_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<="}
_ENTITY_COLUMN = re.compile(r"\be\.(id|tenant)\b")


@dataclass(slots=True)
class Plan:
    """One SELECT of ``(id, version, doc)`` rows in id order and what is left to do in Python."""

    sql: str
    params: list[Any]
    #: the idPattern still to check on each id
    id_pattern: str | None = None
    #: True when the rows (after the idPattern) are exactly the matching entities
    exact: bool = True


def _json(values: Any) -> str:
    return orjson.dumps(list(values)).decode()


# 4.17 Entity type selection, as lookups on entity_types
def _type_sql(expr: TypeExpr, params: list[Any]) -> str:
    if isinstance(expr, TypeName):
        params.append(expr.name)
        return (
            "EXISTS (SELECT 1 FROM entity_types x WHERE x.tenant = e.tenant"
            " AND x.type = ? AND x.id = e.id)"
        )
    joiner = " AND " if isinstance(expr, TypeAnd) else " OR "
    return "(" + joiner.join(_type_sql(term, params) for term in expr.terms) + ")"


def _attr_exists(name: str, params: list[Any]) -> str:
    params.append(name)
    return (
        "EXISTS (SELECT 1 FROM entity_attrs a WHERE a.tenant = e.tenant"
        " AND a.attr = ? AND a.id = e.id)"
    )


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


def _value_sql(expr: Comparison, params: list[Any]) -> tuple[str | None, bool]:
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
        cond = f"(v.val {sql_op} ? AND v.val >= '')"
        iri = value.vocab_iri if isinstance(value, Text) else None
        if iri is None or iri == value.value:
            return cond, True
        if op in (">=", "<="):
            params.append(iri)
            cond = f"({cond} OR (v.vocab = 1 AND v.val = ?))"
        return cond, False
    return None, False


# 4.9 NGSI-LD Query Language: the terms the indexes can answer
def _q_sql(expr: QExpr, params: list[Any]) -> tuple[str | None, bool]:
    """A condition selecting a superset of the entities ``expr`` selects (None: all)."""
    if isinstance(expr, And | Or):
        local: list[Any] = []
        parts = [_q_sql(term, local) for term in expr.terms]
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
            return "NOT " + _attr_exists(path.names[0], params), True
        return _attr_exists(path.names[0], params), simple
    if simple:
        local = [path.names[0]]
        cond, exact = _value_sql(expr, local)
        if cond is not None:
            params.extend(local)
            return (
                "EXISTS (SELECT 1 FROM attr_values v WHERE v.tenant = e.tenant"
                f" AND v.attr = ? AND v.id = e.id AND {cond})",
                exact,
            )
    # every term needs its attribute: that much the index can check
    return _attr_exists(path.names[0], params), False


def _type_list(expr: TypeExpr | None) -> list[str] | None:
    """The names of ``A|B|C`` (any of these types), else None."""
    if isinstance(expr, TypeOr) and all(isinstance(t, TypeName) for t in expr.terms):
        return sorted({t.name for t in expr.terms if isinstance(t, TypeName)})
    return None


def _driver_type(expr: TypeExpr | None) -> str | None:
    if isinstance(expr, TypeName):
        return expr.name
    if isinstance(expr, TypeAnd):
        for term in expr.terms:
            if isinstance(term, TypeName):
                return term.name
    return None


def _required_attr(expr: QExpr | None) -> str | None:
    """An attribute every entity the q expression selects has, if there is one."""
    if isinstance(expr, Comparison) or (isinstance(expr, Exists) and not expr.negated):
        return expr.path.names[0]
    if isinstance(expr, And):
        for term in expr.terms:
            found = _required_attr(term)
            if found is not None:
                return found
    return None


def compile_query(tenant: str, query: EntityQuery) -> Plan:
    """The SELECT of candidate ``(id, version, doc)`` rows for ``query``, in id order."""
    params: list[Any] = []
    conds: list[str] = []
    exact = True
    bbox = bbox_for(query.geo_q) if query.geo_q is not None else None
    driver_type = _driver_type(query.type_expr)
    driver_attr = _required_attr(query.q)
    if driver_attr is None and query.attrs is not None and len(query.attrs) == 1:
        driver_attr = query.attrs[0]
    id_col = "e.id"
    if query.ids is None and bbox is None and driver_type is not None:
        source = (
            "FROM entity_types t JOIN entities e ON e.tenant = t.tenant AND e.id = t.id"
            " WHERE t.tenant = ? AND t.type = ?"
        )
        params += [tenant, driver_type]
        id_col = "t.id"
    elif query.ids is None and bbox is None and driver_attr is not None:
        # no type: the entities that have the attribute the q (or attrs) needs
        source = (
            "FROM entity_attrs t JOIN entities e ON e.tenant = t.tenant AND e.id = t.id"
            " WHERE t.tenant = ? AND t.attr = ?"
        )
        params += [tenant, driver_attr]
        id_col = "t.id"
    else:
        source = "FROM entities e WHERE e.tenant = ?"
        params.append(tenant)
    if query.ids is not None:
        conds.append("e.id IN (SELECT value FROM json_each(?))")
        params.append(_json(query.ids))
    if bbox is not None:
        assert query.geo_q is not None
        minx, miny, maxx, maxy = bbox
        conds.append(
            # CROSS JOIN: the R*Tree must be the outer loop, not the tenant's rows
            "e.id IN (SELECT g.id FROM geo_rtree r CROSS JOIN geo_rows g ON g.rid = r.id"
            " WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?"
            " AND g.tenant = ? AND g.attr = ?)"
        )
        params += [maxx, minx, maxy, miny, tenant, query.geo_q.geoproperty]
    if query.geo_q is not None:
        exact = False  # the box only bounds the matches
    if query.id_pattern is not None:
        prefix = literal_prefix(query.id_pattern)
        if prefix:
            conds.append(f"{id_col} >= ?")
            params.append(prefix)
            upper = prefix_upper_bound(prefix)
            if upper is not None:
                conds.append(f"{id_col} < ?")
                params.append(upper)
    any_of = _type_list(query.type_expr)
    if any_of is not None:
        conds.append(
            "e.id IN (SELECT id FROM entity_types WHERE tenant = ?"
            " AND type IN (SELECT value FROM json_each(?)))"
        )
        params += [tenant, _json(any_of)]
    elif query.type_expr is not None and not (
        isinstance(query.type_expr, TypeName) and source.startswith("FROM entity_types")
    ):
        conds.append(_type_sql(query.type_expr, params))
    if query.scope_q is not None:
        exact = False
    datasets = query.dataset_ids is not None
    if query.attrs is not None:
        local: list[Any] = []
        conds.append("(" + " OR ".join(_attr_exists(a, local) for a in query.attrs) + ")")
        params += local
        exact = exact and not datasets
    if query.q is not None:
        if datasets:
            exact = False  # only some instances count: leave it all to Python
        else:
            cond, q_exact = _q_sql(query.q, params)
            if cond is not None:
                conds.append(cond)
            exact = exact and q_exact
    if id_col == "t.id":
        # The same row (the join is on tenant and id), but SQLite can now test the
        # conditions on the index row, before it looks the entity up.
        conds = [_ENTITY_COLUMN.sub(r"t.\1", c) for c in conds]
    where = "".join(f" AND {c}" for c in conds)
    sql = f"SELECT e.id, e.version, e.doc {source}{where} ORDER BY {id_col}"
    return Plan(sql, params, query.id_pattern, exact)


def run_query(
    conn: sqlite3.Connection,
    tenant: str,
    query: EntityQuery,
    offset: int,
    limit: int | None,
    count: bool,
) -> tuple[list[Entity], int | None]:
    """Execute ``compile_query`` in one read transaction; the page and the count if asked."""
    found, total = run_query_versioned(conn, tenant, query, offset, limit, count, _every)
    return [item.entity for item in found], total


def _every(entity_id: str, version: int) -> bool:
    return True


def run_query_versioned(
    conn: sqlite3.Connection,
    tenant: str,
    query: EntityQuery,
    offset: int,
    limit: int | None,
    count: bool,
    wanted: Wanted,
) -> tuple[list[Versioned], int | None]:
    """As :func:`run_query`, with versions; documents kept only where ``wanted`` asks.

    Versions and documents come from the same read transaction as the ids, so a
    cache keyed by the version never serves a stale rendering.
    """
    plan = compile_query(tenant, query)
    conn.execute("BEGIN")
    try:
        if plan.exact and plan.id_pattern is None:
            total = None
            if count:
                (total,) = conn.execute(
                    f"SELECT COUNT(*) FROM ({plan.sql})", plan.params
                ).fetchone()
            rows = conn.execute(
                f"{plan.sql} LIMIT ? OFFSET ?",
                [*plan.params, -1 if limit is None else limit, offset],
            ).fetchall()
            return [
                Versioned(i, v, raw=doc if wanted(i, v) else None) for i, v, doc in rows
            ], total
        return _stream(conn, plan, query, offset, limit, count)
    finally:
        conn.execute("COMMIT")


def _stream(
    conn: sqlite3.Connection,
    plan: Plan,
    query: EntityQuery,
    offset: int,
    limit: int | None,
    count: bool,
) -> tuple[list[Versioned], int | None]:
    stop = None if limit is None else offset + limit
    found: list[Versioned] = []
    seen = 0
    for entity_id, version, doc in conn.execute(plan.sql, plan.params):
        if plan.id_pattern is not None and not search(plan.id_pattern, entity_id):
            continue
        entity = None
        if not plan.exact:
            entity = orjson.loads(doc)
            if not matches(entity, query):
                continue
        if seen >= offset and (stop is None or seen < stop):
            found.append(Versioned(entity_id, version, raw=doc, entity=entity))
        seen += 1
        if not count and stop is not None and seen >= stop:
            break
    return found, seen if count else None


__all__ = ["Plan", "compile_query", "run_query", "run_query_versioned"]
