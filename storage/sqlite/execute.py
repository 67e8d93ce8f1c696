"""Reads of entities in one read transaction of a reader thread: query plans and scans.

A query plan of ``sqlite_query``: an exact plan pages in SQL (a merge plan
reads only the page's ids, then the documents the caller wants); any other
plan streams its candidates, decodes them, keeps those
:func:`ngsi_ld.query.matches` accepts and stops after ``offset + limit``
matches unless a count is asked for.  A scan (ids, types and an id pattern,
no q) counts and pages its ids on an index.
"""

from __future__ import annotations

import sqlite3

import orjson

from ngsi_ld.query import EntityQuery, matches
from ngsi_ld.query.regexes import search

from ..base import Entity
from ..versioned import Versioned, Wanted
from .index import stream_size, vocab_used
from .known import Anchors, known_of, page_versions
from .query import AFTER, Plan, compile_query
from .sql import ReadTransaction, read_docs
from .stats import implied


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
    with ReadTransaction(conn):
        known = known_of(conn)  # starts the snapshot
        # planned in the read transaction: the counters it reads match the rows; the
        # plan and the answers are kept while no commit happens (sqlite_known)
        plan = known.plan(tenant, query, lambda: compile_query(
            tenant, query, lambda stream: stream_size(conn, tenant, stream),
            lambda type_name, attr: known.fact(
                ("implied", tenant, type_name, attr),
                lambda: implied(conn, tenant, type_name, attr)),
            lambda attr, iri: known.fact(
                ("vocab", tenant, attr, iri), lambda: vocab_used(conn, tenant, attr, iri)),
        ))
        if plan.ids_page_sql is not None:
            total = None
            if count:
                (total,) = conn.execute(
                    plan.count_sql or f"SELECT COUNT(*) FROM ({plan.ids_sql})", plan.ids_params
                ).fetchone()
            # the page's ids in one row (one step of the statement: the GIL is released
            # and taken again around every step), their versions mostly known already
            anchors = known.anchors(tenant, query)
            ids = _page_ids(conn, plan, anchors, offset, limit)
            if anchors is not None and ids:
                known.learn(anchors, offset, ids)
            page = page_versions(conn, known, tenant, ids)
            wanted_at = [n for n, item in enumerate(page) if wanted(item.entity_id, item.version)]
            if wanted_at:  # into copies: the connection keeps the items without documents
                copies = [Versioned(page[n].entity_id, page[n].version) for n in wanted_at]
                _read_documents(conn, tenant, copies)
                for n, copy in zip(wanted_at, copies, strict=True):
                    page[n] = copy
            return page, total
        elif plan.exact and plan.id_pattern is None:
            total = None
            if count:
                (total,) = conn.execute(
                    plan.count_sql or f"SELECT COUNT(*) FROM ({plan.sql})", plan.params
                ).fetchone()
            rows = conn.execute(
                f"{plan.sql} LIMIT ? OFFSET ?",
                [*plan.params, -1 if limit is None else limit, offset],
            ).fetchall()
        elif plan.keys_sql is not None:
            # ids matched first, then the documents of the page only
            page, total = _stream(conn, plan, query, offset, limit, count, plan.keys_sql)
            _read_documents(conn, tenant, [i for i in page if wanted(i.entity_id, i.version)])
            return page, total
        else:
            return _stream(conn, plan, query, offset, limit, count)
        return [
            Versioned(i, v, raw=doc if wanted(i, v) else None) for i, v, doc in rows
        ], total


def _page_ids(
    conn: sqlite3.Connection, plan: Plan, anchors: Anchors | None, offset: int,
    limit: int | None,
) -> list[str]:
    """The ids of a merge plan's page: after the nearest match this snapshot already
    placed before ``offset`` when there is one (keyset paging), else by OFFSET."""
    rows = -1 if limit is None else limit
    start = None if anchors is None or offset == 0 else anchors.before(offset)
    if start is None or plan.ids_after_sql is None:
        assert plan.ids_page_sql is not None
        sql, params = plan.ids_page_sql, [*plan.ids_params, rows, offset]
    else:
        position, after = start
        params = [after if p is AFTER else p for p in plan.after_params]
        sql, params = plan.ids_after_sql, [*params, rows, offset - position - 1]
    (ids_json,) = conn.execute(sql, params).fetchone()
    ids: list[str] = orjson.loads(ids_json)
    return ids


def _read_documents(conn: sqlite3.Connection, tenant: str, items: list[Versioned]) -> None:
    """Fill in the documents of ``items`` (in the caller's read transaction)."""
    docs = read_docs(conn, tenant, [item.entity_id for item in items])
    for item in items:
        item.raw = docs[item.entity_id]


def _stream(
    conn: sqlite3.Connection,
    plan: Plan,
    query: EntityQuery,
    offset: int,
    limit: int | None,
    count: bool,
    sql: str | None = None,
) -> tuple[list[Versioned], int | None]:
    """The page of the rows of ``sql`` (default ``plan.sql``) that match the idPattern
    and, unless the plan is exact, ``query``; rows are (id, version[, document])."""
    stop = None if limit is None else offset + limit
    found: list[Versioned] = []
    seen = 0
    for row in conn.execute(sql or plan.sql, plan.params):
        entity_id = row[0]
        if plan.id_pattern is not None and not search(plan.id_pattern, entity_id):
            continue
        doc = row[2] if len(row) > 2 else None
        entity = None
        if not plan.exact:  # inexact plans select the documents
            entity = orjson.loads(row[2])
            if not matches(entity, query):
                continue
        if seen >= offset and (stop is None or seen < stop):
            found.append(Versioned(entity_id, row[1], raw=doc, entity=entity))
        seen += 1
        if not count and stop is not None and seen >= stop:
            break
    return found, seen if count else None


__all__ = ["run_query", "run_query_versioned"]
