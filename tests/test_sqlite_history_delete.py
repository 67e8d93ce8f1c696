"""5.6.16 Delete Temporal Representation of an Entity on the embedded store: the entity's
rows of ``temporal_types`` are found by seeks over the tenant's types, not by reading
every row of the tenant (storage/sqlite/history_sql.py ``_DELETE_TYPES``), and exactly
those rows go."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.temporal import history_of_write
from storage import SqliteStore
from storage.sqlite import history_sql

CREATED = "2026-01-01T00:00:00Z"
A = "https://example.org/a"


def _tables() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    history_sql.create_tables(conn)
    return conn


def _types(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT tenant, type, entity_id FROM temporal_types ORDER BY tenant, type, entity_id"
    ).fetchall()


_NAMES = st.one_of(st.sampled_from(["", "T", "U", "https://example.org/T", "é", "T\x00x"]),
                   st.text(max_size=6))
_ROWS = st.lists(st.tuples(st.sampled_from(["", "t1", "t2"]), _NAMES,
                           st.sampled_from(["urn:e:1", "urn:e:2", "urn:e:10", ""])),
                 max_size=40)


@settings(max_examples=300, deadline=None)
@given(rows=_ROWS, tenant=st.sampled_from(["", "t1", "t2", "t3"]),
       entity_id=st.sampled_from(["urn:e:1", "urn:e:2", "urn:e:10", "", "urn:e:3"]))
def test_the_rows_deleted_are_the_entity_s_rows_of_its_tenant(
        rows: list[tuple[str, str, str]], tenant: str, entity_id: str) -> None:
    """The seeks delete what ``WHERE tenant = ? AND entity_id = ?`` deletes, whatever the
    types (the empty string, NUL, any text), tenants and ids."""
    ours, plain = _tables(), _tables()
    for conn in (ours, plain):
        conn.executemany("INSERT OR IGNORE INTO temporal_types (tenant, type, entity_id)"
                         " VALUES (?, ?, ?)", rows)
    history_sql.delete_entity(ours, tenant, entity_id)
    plain.execute("DELETE FROM temporal_types WHERE tenant = ? AND entity_id = ?",
                  (tenant, entity_id))
    assert _types(ours) == _types(plain)


def test_the_delete_seeks_the_entity_s_rows() -> None:
    """No statement the delete runs on ``temporal_types`` reads the tenant's whole range
    (a ``tenant=?``-only search): each of its plan steps there has the type in its key."""
    conn = _tables()
    ran: list[str] = []
    conn.set_trace_callback(ran.append)
    history_sql.delete_entity(conn, "", "urn:e:1")
    conn.set_trace_callback(None)
    statements = [sql for sql in ran if "temporal_types" in sql]
    assert statements
    for sql in statements:
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
        searches = [step for step in plan if "temporal_types" in step]
        assert searches and all("(tenant=? AND type" in step for step in searches), plan


def _entity(entity_id: str, types: list[str], modified: str) -> dict[str, Any]:
    inst = {"type": "Property", "value": 1, "createdAt": CREATED, "modifiedAt": modified}
    return {"id": entity_id, "type": types, "createdAt": CREATED, "modifiedAt": modified,
            "attrs": {A: [inst]}}


async def _write(store: SqliteStore, tenant: str, entity_id: str, types: list[str],
                 modified: str) -> None:
    def record(before: Any, after: Any, new_id: Any) -> Any:
        return history_of_write(before, after, modified, new_id)

    await store.modify(tenant, entity_id, lambda current: _entity(entity_id, types, modified),
                       record=record)


async def test_a_deleted_history_leaves_the_type_queries_of_the_others(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        t, u, v = "https://example.org/T", "https://example.org/U", "https://example.org/V"
        await _write(store, "", "urn:e:1", [t], "2026-01-01T00:01:00Z")
        await _write(store, "", "urn:e:1", [t, u], "2026-01-01T00:02:00Z")  # a type added
        await _write(store, "", "urn:e:2", [u, v], "2026-01-01T00:03:00Z")
        await _write(store, "other", "urn:e:1", [t], "2026-01-01T00:04:00Z")
        history = store.history
        assert await history.delete_history("", "urn:e:1")

        async def ids(tenant: str, types: list[str]) -> list[str]:
            return [r.entity_id for r in await history.temporal_entities(tenant, types=types)]

        assert await ids("", [t]) == []
        assert await ids("", [u]) == ["urn:e:2"]
        assert await ids("", [v]) == ["urn:e:2"]
        assert await ids("other", [t]) == ["urn:e:1"]  # another tenant's entity of that id
        assert not await history.delete_history("", "urn:e:1")
    finally:
        await store.close()
