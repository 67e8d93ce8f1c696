"""What a SQLite reading connection keeps between queries (storage/sqlite/known.py).

The answers planning needs (is a type implied by an attribute, is a string some
VocabProperty's expansion) and the versions of a page's entities are kept while
no commit happens: a repeated page reads only its ids, and a query after a write
sees the write (new versions, a type no longer implied).
"""

from __future__ import annotations

from typing import Any

import pytest
from storage_contract import fresh_tenant, load

from ngsi_ld.query import EntityQuery, matches, parse_q, parse_type_expr, resolve_names
from storage import SqliteStore
from storage.sqlite import known as sqlite_known

NS = "https://example.org/"


def expand(name: str) -> str:
    return NS + name


def entity(n: int, kind: str, a: Any, s: str = "on") -> dict[str, Any]:
    return {"id": f"urn:x:{n:03d}", "type": [NS + kind],
            "attrs": {NS + "a": [{"type": "Property", "value": a}],
                      NS + "s": [{"type": "Property", "value": s}]}}


def put(new: dict[str, Any]) -> Any:
    return lambda old: new


QUERY = resolve_names(EntityQuery(type_expr=parse_type_expr("T"), q=parse_q('s=="on";a>=2')),
                      expand, expand)


@pytest.fixture
def store(one_reader_store: SqliteStore) -> SqliteStore:
    return one_reader_store  # one connection reads all (tests/conftest.py)


async def _page(store: SqliteStore, tenant: str) -> list[tuple[str, int]]:
    found, _ = await store.query_versioned(tenant, QUERY, lambda i, v: False, limit=50)
    return [(item.entity_id, item.version) for item in found]


async def test_a_query_after_a_write_sees_new_versions_and_a_type_no_longer_implied(
    store: SqliteStore,
) -> None:
    items = [entity(n, "T", n % 4, "on" if n % 3 else "off") for n in range(40)]
    tenant = await load(store, items)
    expected = sorted(e["id"] for e in items if matches(e, QUERY))
    before = await _page(store, tenant)
    assert [i for i, _ in before] == expected
    assert await _page(store, tenant) == before  # nothing written: the same versions
    # a write of a matching entity (a new version) and a U with the attribute: the
    # type T is no longer implied by the attribute a
    changed = entity(2, "T", 3)
    other = {**entity(100, "U", 5), "id": "urn:x:100"}
    await store.modify_many(tenant, [(changed["id"], put(changed)), (other["id"], put(other))])
    after = dict(await _page(store, tenant))
    assert sorted(after) == sorted({*expected, changed["id"]})
    assert "urn:x:100" not in after
    old = dict(before)
    assert after[changed["id"]] != old.get(changed["id"])
    assert all(after[i] == old[i] for i in after if i != changed["id"])


async def test_a_repeated_page_reads_only_its_ids_until_a_commit(store: SqliteStore) -> None:
    items = [entity(n, "T", n % 4) for n in range(30)]
    tenant = await load(store, items)
    statements: list[str] = []
    await store._read(lambda conn: conn.set_trace_callback(statements.append))
    await _page(store, tenant)
    first = list(statements)
    statements.clear()
    await _page(store, tenant)
    # the versions, and the planning answers, came from what the connection kept
    assert any("FROM entities" in s for s in first)
    assert not any("FROM entities" in s or "discovery_stats" in s for s in statements)
    await store.modify_many(fresh_tenant(), [("urn:y", put(entity(1, "T", 1)))])
    statements.clear()
    await _page(store, tenant)  # a commit (of another tenant even): asked again
    assert any("FROM entities" in s for s in statements)


async def test_a_connection_keeps_a_bounded_number_of_versions(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite_known, "MAX_VERSIONS", 10)
    items = [entity(n, "T", 2) for n in range(25)]
    tenant = await load(store, items)
    for offset in (0, 8, 16, 0):
        found, _ = await store.query_versioned(tenant, QUERY, lambda i, v: False,
                                               offset=offset, limit=8)
        assert [item.entity_id for item in found] == [e["id"] for e in items][offset:offset + 8]
    sizes = await store._read(lambda conn: len(conn.known.versions[tenant]))
    assert sizes <= 10


async def test_the_kept_versions_never_hold_documents(store: SqliteStore) -> None:
    items = [entity(n, "T", 3) for n in range(12)]
    tenant = await load(store, items)
    await _page(store, tenant)  # the versions are kept
    by_id = {e["id"]: e for e in items}
    for _ in range(2):  # every document wanted: read into the page, not into what is kept
        found, _ = await store.query_versioned(tenant, QUERY, lambda i, v: True, limit=50)
        assert [item.entity for item in found] == [by_id[i] for i in sorted(by_id)]
    kept = await store._read(lambda conn: list(conn.known.versions[tenant].values()))
    assert len(kept) == len(items)
    assert not any(item.has_document for item in kept)
    # a page wanting nothing carries no document
    found, _ = await store.query_versioned(tenant, QUERY, lambda i, v: False, limit=50)
    assert not any(item.has_document for item in found)
