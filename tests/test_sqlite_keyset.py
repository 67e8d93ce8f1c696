"""Keyset paging of merge plans (storage/sqlite/known.py ``Anchors``).

A reading connection keeps the ids of a query's pages by their position while
no commit happens; a later page of the same query starts its index ranges after
the id just before it.  The property: any sequence of pages answers what
``ngsi_ld.query.matches`` selects, sliced.  Then what must not happen: a page
placed after an id learnt before a write (of this store or of another process
on the same file), and an unbounded number of kept positions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_contract import load
from test_sqlite_query_plan import NS, entities, entity, expand, queries

from ngsi_ld.query import EntityQuery, matches, parse_q, parse_type_expr, resolve_names
from storage import SqliteStore
from storage.sqlite import execute as sqlite_exec
from storage.sqlite import known as sqlite_known
from storage.sqlite.query import AFTER

#: a statement of keyset paging (the trace shows the values bound)
KEYSET = re.compile(r"\.id > '")
QUERY = resolve_names(EntityQuery(type_expr=parse_type_expr("T"), q=parse_q('s=="on";a>=2')),
                      expand, expand)


def lamp(n: int, a: int, s: str = "on") -> dict[str, Any]:
    return entity(n, ["T"], {"a": [{"type": "Property", "value": a}],
                             "s": [{"type": "Property", "value": s}]})


def put(new: dict[str, Any]) -> Any:
    return lambda old: new


@pytest.fixture
def store(one_reader_store: SqliteStore) -> SqliteStore:
    return one_reader_store  # one connection reads all (tests/conftest.py)


async def _ids(store: SqliteStore, tenant: str, query: EntityQuery, offset: int,
               limit: int | None) -> list[str]:
    found, _ = await store.query_entities(tenant, query, offset=offset, limit=limit)
    return [e["id"] for e in found]


async def _traced(store: SqliteStore) -> list[str]:
    statements: list[str] = []
    await store._read(lambda conn: conn.set_trace_callback(statements.append))
    return statements


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(items=entities(), query=queries, sizes=st.dictionaries(
    st.sampled_from([NS + n for n in ("T", "U", "a", "s", "b")]), st.integers(0, 100)),
    pages=st.lists(st.tuples(st.integers(0, 12), st.none() | st.integers(1, 5)),
                   min_size=1, max_size=8))
async def test_any_sequence_of_pages_answers_what_matches_selects(
    store: SqliteStore, items: list[dict[str, Any]], query: EntityQuery,
    sizes: dict[str, int], pages: list[tuple[int, int | None]],
) -> None:
    tenant = await load(store, items)
    expected = sorted(e["id"] for e in items if matches(e, query))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_exec, "stream_size",
                      lambda conn, tenant, stream: sizes.get(stream.key, 10))
        for offset, limit in pages:  # one query object: the positions read are kept
            stop = None if limit is None else offset + limit
            assert await _ids(store, tenant, query, offset, limit) == expected[offset:stop]


async def test_a_later_page_starts_after_a_known_id(store: SqliteStore) -> None:
    items = [lamp(n, n % 4) for n in range(40)]
    tenant = await load(store, items)
    expected = sorted(e["id"] for e in items if matches(e, QUERY))
    statements = await _traced(store)
    assert await _ids(store, tenant, QUERY, 0, 5) == expected[:5]
    assert not any(KEYSET.search(s) for s in statements)
    statements.clear()
    assert await _ids(store, tenant, QUERY, 5, 5) == expected[5:10]
    assert await _ids(store, tenant, QUERY, 8, 4) == expected[8:12]  # overlapping
    # a gap: after the last known position, then an OFFSET of one
    assert await _ids(store, tenant, QUERY, 13, 3) == expected[13:16]
    assert sum(bool(KEYSET.search(s)) for s in statements) == 3


async def test_a_write_drops_the_known_positions(store: SqliteStore) -> None:
    items = [lamp(n, 3) for n in range(10, 30)]
    tenant = await load(store, items)
    assert await _ids(store, tenant, QUERY, 0, 5) == [e["id"] for e in items[:5]]
    # a new match before every known one: each later page moves by one
    first = lamp(1, 3)
    await store.modify_many(tenant, [(first["id"], put(first))])
    expected = [first["id"]] + [e["id"] for e in items]
    assert await _ids(store, tenant, QUERY, 5, 5) == expected[5:10]
    # a match leaves (its value changes): later pages move back by one
    gone = lamp(12, 3, "off")
    await store.modify_many(tenant, [(gone["id"], put(gone))])
    expected.remove(gone["id"])
    assert await _ids(store, tenant, QUERY, 10, 5) == expected[10:15]


async def test_a_write_of_another_process_drops_the_known_positions(
    store: SqliteStore, tmp_path: Path,
) -> None:
    items = [lamp(n, 3) for n in range(10, 30)]
    tenant = await load(store, items)
    assert await _ids(store, tenant, QUERY, 0, 8) == [e["id"] for e in items[:8]]
    other = SqliteStore(store.path, readers=1)  # its own connections
    await other.open()
    try:
        first = lamp(1, 3)
        await other.modify_many(tenant, [(first["id"], put(first))])
    finally:
        await other.close()
    expected = [first["id"]] + [e["id"] for e in items]
    assert await _ids(store, tenant, QUERY, 8, 4) == expected[8:12]


async def test_a_connection_keeps_a_bounded_number_of_positions(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite_known, "MAX_ANCHORS", 12)
    items = [lamp(n, 2 + n % 2) for n in range(60)]
    tenant = await load(store, items)
    expected = sorted(e["id"] for e in items if matches(e, QUERY))
    for offset, limit in [(n, 7) for n in range(0, 50, 7)] + [(3, None), (20, 5)]:
        stop = None if limit is None else offset + limit
        assert await _ids(store, tenant, QUERY, offset, limit) == expected[offset:stop]
        kept = await store._read(lambda conn: conn.known.anchor_count)
        assert kept <= 12


async def test_each_index_range_of_a_keyset_page_is_a_seek(store: SqliteStore) -> None:
    tenant = await load(store, [lamp(n, n % 4) for n in range(40)])
    await _ids(store, tenant, QUERY, 0, 5)

    def details(conn: Any) -> list[str]:
        plan = conn.known.plan(tenant, QUERY, lambda: None)
        params = ["urn:x:004" if p is AFTER else p for p in plan.after_params]
        rows = conn.execute("EXPLAIN QUERY PLAN " + plan.ids_after_sql,
                            [*params, 5, 0]).fetchall()
        return [row[-1] for row in rows]

    # the arms' tables (d: the first stream, s: the others), not the name look-ups
    searches = [d for d in await store._read(details) if d.startswith(("SEARCH d ", "SEARCH s "))]
    assert len(searches) == 2  # the two q terms (the type T is implied by them)
    assert all(re.search(r"\bid>\?", d) for d in searches)
