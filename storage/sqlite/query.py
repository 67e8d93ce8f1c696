"""Entity queries on the SQLite store: what SQL can select, then ``matches`` in Python.

:func:`compile_query` turns an :class:`EntityQuery` into one SELECT over the
indexes (see ``sqlite_index``) that returns a superset of the matching
entities in id order.  Two shapes:

* a merge plan, when the query is type names and simple q terms ANDed
  (``attr op number|string``, ``attr``, ``!attr``): each is a :class:`Stream`
  of ids in id order, and SQLite merges the sorted streams (``INTERSECT`` with
  ``ORDER BY``), reading each index range once, in order, with no lookup per
  row.  A stream much longer than the shortest (``MERGE_RATIO``, estimated by
  ``stream_size``) is instead looked up from the shortest, as are the negated
  terms.  The SQL is exact: it pages, and only the page's rows are read from
  ``entities``, documents only where the caller wants them;
* otherwise the rows come from the most selective index available: the id
  list, the R*Tree of geometries (``bbox_for``), the ``entity_types`` key of a
  type, or the entities key of the tenant (an ``idPattern`` with a literal
  prefix is a key range); type expressions, ``attrs`` and the simple q terms
  (also joined by ``|``) become EXISTS lookups on the index tables, correlated
  on the id; the rest (scopeQ, geo predicates, dates, patterns,
  sub-attributes...) is left to :func:`ngsi_ld.query.matches`, evaluated on
  the decoded candidates.

When the SQL is exact (nothing is left to Python) the database pages and
counts by itself; otherwise candidates are decoded one by one and the scan
stops after ``offset + limit`` matches (all are needed for a count).
The conditions themselves are written by ``sqlite_conditions``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ngsi_ld.query import (
    And,
    Comparison,
    EntityQuery,
    Exists,
    Or,
    QExpr,
    Text,
    TypeAnd,
    TypeExpr,
    TypeName,
    TypeOr,
    ValueList,
    any_of_names,
    bbox_for,
)

from ..helpers import is_prefix_only, literal_prefix, prefix_upper_bound, required_literal
from .conditions import attr_exists, json_list, q_sql, type_sql, value_sql
from .geocells import cover, quantized_box
from .index import Stream
from .names import NID

Size = Callable[[Stream], int]
#: whether some value of the attribute ``attr`` is a VocabProperty expanding to ``iri``
VocabUsed = Callable[[str, str], bool]
#: whether every entity that has attribute values of ``attr`` is of type ``type_name``
#: (from the discovery counters, sqlite_stats): the type's stream is then implied
Implied = Callable[[str, str], bool]

#: most conditions pushed into one SELECT; a larger query is filtered in Python
MAX_SQL_TERMS = 64
#: a stream up to this many times the smallest one is merged; a longer one is probed
MERGE_RATIO = 4
#: the place of the keyset id in ``Plan.after_params``
AFTER = object()
#: the number of the name of the second parameter in the tenant of the first (?1)
_NID_FIRST = "(SELECT nid FROM names WHERE tenant = ?1 AND name = ?)"
_ENTITY_ID = re.compile(r"\be\.id\b")


@dataclass(slots=True)
class Plan:
    """One SELECT of ``(id, version, doc)`` rows in id order and what is left to do in Python."""

    sql: str
    params: list[Any]
    #: the idPattern still to check on each id
    id_pattern: str | None = None
    #: True when the rows (after the idPattern) are exactly the matching entities
    exact: bool = True
    #: a merge plan: the matching ids in order (``ids_params``), and ``sql`` with
    #: ``LIMIT ? OFFSET ?`` on those ids (``page_sql``, ``params`` + limit, offset)
    ids_sql: str | None = None
    ids_params: tuple[Any, ...] = ()
    page_sql: str | None = None
    #: an exact plan but for the idPattern: ``sql`` without the documents, so that
    #: ids are matched first and only the page's documents are read
    keys_sql: str | None = None
    #: an exact plan: the count of its rows, on the driving index alone
    count_sql: str | None = None
    #: a merge plan: the page's ids as one JSON array (``ids_params`` + limit, offset)
    ids_page_sql: str | None = None
    #: the same for the ids after a given one (keyset paging: the parameters are
    #: ``after_params`` with :data:`AFTER` replaced by that id, + limit, offset)
    ids_after_sql: str | None = None
    after_params: tuple[Any, ...] = ()


def _type_list(expr: TypeExpr | None) -> list[str] | None:
    """The names of ``A|B|C`` (any of these types), else None."""
    names = any_of_names(expr) if isinstance(expr, TypeOr) else None
    return None if names is None else sorted(set(names))


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


# 4.9 NGSI-LD Query Language and 4.17 type selection: the conjunctions that the
# indexes answer exactly, as sorted id streams
def _term_streams(expr: QExpr, positives: list[Stream], negatives: list[Stream]) -> bool:
    """Add the streams of a conjunction of simple terms; False if a term is not one."""
    if isinstance(expr, And):
        return all(_term_streams(term, positives, negatives) for term in expr.terms)
    if isinstance(expr, Or):
        return False
    path = expr.path
    if len(path.names) != 1 or path.member is not None or path.keys:
        return False
    if isinstance(expr, Exists):
        # the entities having the attribute: its whole range of attr_values
        (negatives if expr.negated else positives).append(Stream("attr_values", path.names[0]))
        return True
    params: list[Any] = []
    cond, exact = value_sql(expr, params)
    if cond is None or not exact:
        return False
    name = path.names[0]
    value = expr.value
    if (expr.op == "==" and isinstance(value, Text) and value.vocab_iri is not None
            and value.vocab_iri != value.value):
        # the string, or a VocabProperty's expansion of it: the string alone is one
        # range of the value index, in id order, when no value is that expansion
        plain = Stream("attr_values", name, "v.val = ?", (value.value,))
        positives.append(Stream("attr_values", name, cond, tuple(params), value.vocab_iri,
                                plain))
    else:
        positives.append(Stream("attr_values", name, cond, tuple(params)))
    return True


def _streams(query: EntityQuery) -> tuple[tuple[Stream, ...], tuple[Stream, ...]] | None:
    """Type names and q terms ANDed, each an id stream (negated ones to subtract), or None."""
    if query.q is None or any(
        selector is not None
        for selector in (query.ids, query.id_pattern, query.attrs, query.scope_q,
                         query.geo_q, query.dataset_ids)
    ):
        return None
    positives: list[Stream] = []
    negatives: list[Stream] = []
    expr = query.type_expr
    names = expr.terms if isinstance(expr, TypeAnd) else () if expr is None else (expr,)
    for name in names:
        if not isinstance(name, TypeName):
            return None
        positives.append(Stream("entity_types", name.name))
    if not _term_streams(query.q, positives, negatives) or not positives:
        return None
    return tuple(positives), tuple(negatives)


@lru_cache(maxsize=512)
def _merge_plan(
    tenant: str, merged: tuple[Stream, ...], probed: tuple[Stream, ...],
    negatives: tuple[Stream, ...],
) -> Plan:
    # The first stream carries the lookups of the others; SQLite merges the sorted
    # streams of a compound SELECT with ORDER BY (INTERSECT), reading each in order.
    ids_params: list[Any] = []
    ids_sql, count_sql = _merged_ids(tenant, merged, probed, negatives, ids_params)
    # keyset paging: every stream starts after an id (a seek in each index range),
    # so a page that follows a known position reads ``limit`` rows, not offset + limit
    after_params: list[Any] = []
    after_sql, _ = _merged_ids(tenant, merged, probed, negatives, after_params, AFTER)
    entities = "FROM entities e WHERE e.tenant = ? AND e.id IN"
    return Plan(
        f"SELECT e.id, e.version, e.doc {entities} ({ids_sql}) ORDER BY e.id",
        [tenant, *ids_params], None, True, ids_sql, tuple(ids_params),
        f"SELECT e.id, e.version {entities} ({ids_sql} LIMIT ? OFFSET ?) ORDER BY e.id",
        count_sql=count_sql,
        ids_page_sql=f"SELECT json_group_array(id) FROM ({ids_sql} LIMIT ? OFFSET ?)",
        ids_after_sql=f"SELECT json_group_array(id) FROM ({after_sql} LIMIT ? OFFSET ?)",
        after_params=tuple(after_params),
    )


def _merged_ids(
    tenant: str, merged: tuple[Stream, ...], probed: tuple[Stream, ...],
    negatives: tuple[Stream, ...], params: list[Any], after: object = None,
) -> tuple[str, str | None]:
    """The INTERSECT of the streams in id order (only ids above ``after``'s placeholder
    when given), and the count of a lone attribute's values when that is the plan."""
    driver = merged[0].select("d", tenant, params, after)
    driver += "".join(" AND " + s.exists("d", tenant, params) for s in probed)
    driver += "".join(" AND NOT " + s.exists("d", tenant, params) for s in negatives)
    count_sql = None
    if len(merged) == 1 and merged[0].table == "attr_values":
        alone = not probed and not negatives and after is None
        if alone and merged[0].cond:
            # the values of one attribute alone: counted on the index, one id once
            count_sql = "SELECT COUNT(DISTINCT d.id)" + driver[len("SELECT d.id"):]
        driver += " GROUP BY d.id"  # several values of one entity, one id
        if alone and not merged[0].cond:
            # the entities having the attribute: its range in id order, one id once
            # (no temporary B-tree, which COUNT(DISTINCT) builds)
            count_sql = f"SELECT COUNT(*) FROM ({driver})"
    arms = [driver] + [s.select("s", tenant, params, after) for s in merged[1:]]
    return " INTERSECT ".join(arms) + " ORDER BY 1", count_sql


def _equal_sizes(stream: Stream) -> int:
    return 1


def compile_query(
    tenant: str, query: EntityQuery, size: Size | None = None, implied: Implied | None = None,
    vocab_used: VocabUsed | None = None,
) -> Plan:
    """The SELECT of candidate ``(id, version, doc)`` rows for ``query``, in id order.

    ``size`` estimates the rows of an index stream (see :func:`stream_size`); it
    decides which streams are merged and which are looked up per candidate.
    ``implied`` tells a type stream that a value stream makes redundant (every
    entity with values of that attribute has that type); it is dropped.
    ``vocab_used`` tells whether an equality on a string must also look for the
    VocabProperty expansion of the string; when not, the stream of the string alone
    reads only its matches from the value index (without it, both are read).
    """
    known = _shapes.get(id(query))
    if known is not None and known[0] is query:
        shape = known[1]
    else:
        shape = _shape(query)
        if len(_shapes) >= _MAX_SHAPES:
            _shapes.clear()
        _shapes[id(query)] = (query, shape)  # the query kept: its id is not reused
    if shape is _TOO_LARGE:
        return _filter_plan(tenant, query)
    if shape is None:
        return _nested_plan(tenant, query)
    positives, negatives = shape
    if implied is not None:
        positives = _without_implied(positives, implied)
    if vocab_used is not None:
        positives = tuple(
            s.plain if s.plain is not None and s.vocab is not None
            and not vocab_used(s.key, s.vocab) else s
            for s in positives
        )
    measure = size or _equal_sizes
    sized = sorted(((measure(s), n, s) for n, s in enumerate(positives)),
                   key=lambda item: item[:2])
    bound = MERGE_RATIO * max(sized[0][0], 1)
    merged = tuple(s for rows, _, s in sized if rows <= bound)
    probed = tuple(s for rows, _, s in sized if rows > bound)
    return _merge_plan(tenant, merged, probed, negatives)


_Streams = tuple[tuple[Stream, ...], tuple[Stream, ...]]
#: the streams of a query too large for one SELECT (see :data:`MAX_SQL_TERMS`)
_TOO_LARGE: _Streams = ((), ())
#: the streams of the queries planned lately, by the query's identity: a query
#: parsed once (the service keeps them by their text) is not hashed field by field
#: at every request
_shapes: dict[int, tuple[EntityQuery, _Streams | None]] = {}
_MAX_SHAPES = 512


def _shape(query: EntityQuery) -> _Streams | None:
    if _terms(query) > MAX_SQL_TERMS:
        return _TOO_LARGE
    try:
        return _cached_streams(query, _vocabs(query.q, []))
    except TypeError:  # an unhashable selector: plan it afresh
        return _streams(query)


def _vocabs(expr: Any, found: list[str | None]) -> tuple[str | None, ...]:
    """The vocabulary expansions of the strings of ``expr``, in order.

    Equality of :class:`~ngsi_ld.query.ast.Text` ignores its expansion, which the
    streams depend on: two requests with the same q under different @contexts
    must not share the streams of the first.
    """
    if isinstance(expr, And | Or):
        for term in expr.terms:
            _vocabs(term, found)
    elif isinstance(expr, Comparison):
        value = expr.value
        for item in value.values if isinstance(value, ValueList) else (value,):
            if isinstance(item, Text):
                found.append(item.vocab_iri)
    return tuple(found)


@lru_cache(maxsize=512)
def _cached_streams(query: EntityQuery, vocabs: tuple[str | None, ...]) -> _Streams | None:
    """:func:`_streams` of ``query``, kept by the query and its strings' expansions."""
    return _streams(query)


def _without_implied(positives: tuple[Stream, ...], implied: Implied) -> tuple[Stream, ...]:
    """``positives`` without the type streams that a value stream implies."""
    values = [s.key for s in positives if s.table == "attr_values"]
    if not values:
        return positives
    kept = tuple(
        s for s in positives
        if s.table != "entity_types" or not any(implied(s.key, attr) for attr in values)
    )
    return kept or positives


def _terms(query: EntityQuery) -> int:
    """The conditions the selectors of ``query`` would put in one SELECT."""

    def count(expr: Any) -> int:
        if isinstance(expr, And | Or | TypeAnd | TypeOr):
            return sum(count(term) for term in expr.terms)
        return 0 if expr is None else 1

    return count(query.q) + count(query.type_expr) + len(query.attrs or ())


def _filter_plan(tenant: str, query: EntityQuery) -> Plan:
    """A query too large for one SELECT: rows of one type (or all), filtered in Python.

    SQLite refuses a compound SELECT of more than 500 arms and expressions
    deeper than 1000; a q of hundreds of terms stays correct this way, if slow.
    """
    driver = _driver_type(query.type_expr)
    narrowed = EntityQuery(
        ids=query.ids, id_pattern=query.id_pattern,
        type_expr=None if driver is None else TypeName(driver),
    )
    plan = _nested_plan(tenant, narrowed)
    plan.exact, plan.keys_sql, plan.count_sql = False, None, None
    return plan


def _nested_plan(tenant: str, query: EntityQuery) -> Plan:
    """Rows from one index in id order, the other selectors as per-row lookups."""
    params: list[Any] = []
    conds: list[str] = []
    exact = True
    bbox = bbox_for(query.geo_q) if query.geo_q is not None else None
    driver_type = _driver_type(query.type_expr)
    driver_attr = _required_attr(query.q)
    if driver_attr is None and query.attrs is not None and len(query.attrs) == 1:
        driver_attr = query.attrs[0]
    id_col = "e.id"
    group = ""
    # The index tables have no tenant column: their key, a number of sqlite_names,
    # is the tenant's.  The tenant is the first parameter of every statement of
    # the plan (``?1``), so that the join of the entities can name it again.
    if query.ids is None and bbox is None and driver_type is not None:
        index, where_key = "entity_types t", " WHERE t.type = " + _NID_FIRST
        params += [tenant, driver_type]
        id_col = "t.id"
    elif query.ids is None and bbox is None and driver_attr is not None:
        # no type: the entities that have the attribute the q (or attrs) needs
        # (one row per value of the attribute, or its marker: one id once, GROUP BY)
        index, where_key = "attr_values t", " WHERE t.attr = " + _NID_FIRST
        params += [tenant, driver_attr]
        id_col = "t.id"
        group = " GROUP BY t.id"
    else:
        index, where_key = "entities e", " WHERE e.tenant = ?"
        params.append(tenant)
    # the index alone is enough to count: the entities table is joined for the rows
    counted = f"FROM {index}{where_key}"
    source = counted if id_col == "e.id" else (
        f"FROM {index} JOIN entities e ON e.tenant = ?1 AND e.id = t.id{where_key}")
    if query.ids is not None:
        conds.append("e.id IN (SELECT value FROM json_each(?))")
        params.append(json_list(query.ids))
    if bbox is not None:
        assert query.geo_q is not None
        conds.append(_geo_sql(tenant, query.geo_q.geoproperty, bbox, params))
    if query.geo_q is not None:
        exact = False  # the box only bounds the matches
    if query.id_pattern is not None:
        conds += id_pattern_sql(id_col, query.id_pattern, params)
    any_of = _type_list(query.type_expr)
    if any_of is not None:
        conds.append(
            "e.id IN (SELECT id FROM entity_types WHERE type IN (SELECT nid FROM names"
            " WHERE tenant = ? AND name IN (SELECT value FROM json_each(?))))"
        )
        params += [tenant, json_list(any_of)]
    elif query.type_expr is not None and not (
        isinstance(query.type_expr, TypeName) and index.startswith("entity_types")
    ):
        conds.append(type_sql(tenant, query.type_expr, params))
    if query.scope_q is not None:
        exact = False
    datasets = query.dataset_ids is not None
    if query.attrs is not None:
        local: list[Any] = []
        conds.append("(" + " OR ".join(attr_exists(tenant, a, local) for a in query.attrs) + ")")
        params += local
    if query.q is not None:
        if datasets:
            exact = False  # only some instances count: leave it all to Python
        else:
            cond, q_exact = q_sql(tenant, query.q, params)
            if cond is not None:
                conds.append(cond)
            exact = exact and q_exact
    if id_col == "t.id":
        # The same row (the join is on tenant and id), but SQLite can now test the
        # conditions on the index row, before it looks the entity up.
        conds = [_ENTITY_ID.sub("t.id", c) for c in conds]
    where = "".join(f" AND {c}" for c in conds)
    sql = f"SELECT e.id, e.version, e.doc {source}{where}{group} ORDER BY {id_col}"
    # a pattern that is a literal prefix is its key range exactly: nothing left to match
    pattern = None if query.id_pattern and is_prefix_only(query.id_pattern) else query.id_pattern
    plan = Plan(sql, params, pattern, exact)
    if exact and pattern is not None:
        plan.keys_sql = f"SELECT e.id, e.version {source}{where}{group} ORDER BY {id_col}"
    elif exact:
        plan.count_sql = (f"SELECT COUNT(*) FROM (SELECT 1 {counted}{where}{group})" if group
                          else f"SELECT COUNT(*) {counted}{where}")
    return plan


def _geo_sql(tenant: str, geoproperty: str, bbox: tuple[float, float, float, float],
             params: list[Any]) -> str:
    """The condition on ``e.id``: its ``geoproperty`` may meet ``bbox`` (a superset of the
    matches, clause 4.10): a box of the R*Tree meets it, or a Point's cell (its value
    row, ``sqlite_geocells``) is in one of the ranges covering it."""
    minx, miny, maxx, maxy = bbox
    # CROSS JOIN: the R*Tree must be the outer loop, not the tenant's rows
    boxes = ("SELECT g.id FROM geo_rtree r CROSS JOIN geo_rows g ON g.rid = r.id"
             " WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?"
             " AND g.tenant = ? AND g.attr = ?")
    params += [maxx, minx, maxy, miny, tenant, geoproperty]
    ranges, box = cover(minx, miny, maxx, maxy), quantized_box(minx, miny, maxx, maxy)
    if not ranges or box is None:
        return f"e.id IN ({boxes})"
    # each range one seek of attr_values_value (attr, val, id), the ranges the outer
    # loop; its rows outside the box dropped on the cell's coordinates (sqlite_geocells)
    cells = ("SELECT v.id FROM (VALUES " + ", ".join(["(?, ?)"] * len(ranges)) + ") c"
             f" CROSS JOIN attr_values v WHERE v.attr = {NID}"
             " AND v.val >= c.column1 AND v.val <= c.column2"
             " AND substr(v.val, 9, 4) BETWEEN ? AND ? AND substr(v.val, 13, 4) BETWEEN ? AND ?")
    for first, last in ranges:
        params += (first, last)
    params += (tenant, geoproperty, *box)
    return f"e.id IN ({boxes} UNION ALL {cells})"


def id_pattern_sql(id_col: str, pattern: str, params: list[Any]) -> list[str]:
    """Conditions on ``id_col`` every id matching ``pattern`` meets: the key range of
    an anchored literal prefix, else containing the literal every match contains."""
    prefix = literal_prefix(pattern)
    if prefix:
        params.append(prefix)
        upper = prefix_upper_bound(prefix)
        if upper is None:
            return [f"{id_col} >= ?"]
        params.append(upper)
        return [f"{id_col} >= ?", f"{id_col} < ?"]
    literal = required_literal(pattern)
    if not literal:
        return []
    params.append(literal)
    return [f"instr({id_col}, ?) > 0"]


__all__ = [
    "AFTER", "MAX_SQL_TERMS", "MERGE_RATIO", "Implied", "Plan", "Size", "VocabUsed",
    "compile_query", "id_pattern_sql",
]
