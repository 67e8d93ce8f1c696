"""The embedded store's history layout since issue 15: what a recorded update writes,
and files written by the version before it (the instanceId index, every record
rewritten) still opening and answering."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ngsi_ld.temporal import TemporalQuery, history_of_write
from storage import SqliteStore
from storage.temporal import instance_number

T = "https://example.org/T"
P = "https://example.org/p"
E = "urn:ngsi-ld:T:1"
CREATED = "2026-01-01T00:00:00Z"


def state(value: Any, modified: str) -> dict[str, Any]:
    inst = {"type": "Property", "value": value, "createdAt": CREATED, "modifiedAt": modified}
    return {"id": E, "type": [T], "createdAt": CREATED, "modifiedAt": modified,
            "attrs": {P: [inst]}}


async def write(store: SqliteStore, value: Any, modified: str) -> None:
    def record(before: Any, after: Any, new_id: Any) -> Any:
        return history_of_write(before, after, modified, new_id)

    await store.modify("", E, lambda current: state(value, modified), record=record)


async def two_writes_in(path: Path) -> list[str]:
    """A store file at ``path`` holding two recorded writes of E; their instanceIds."""
    store = SqliteStore(path)
    await store.open()
    try:
        await write(store, 1, "2026-01-01T00:00:00Z")
        await write(store, 2, "2026-01-01T00:05:00Z")
        return await instance_ids(store)
    finally:
        await store.close()


def record_row(path: Path) -> tuple[Any, ...]:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT types, created, modified, deleted FROM temporal_entities"
                           " WHERE entity_id = ?", (E,)).fetchone()
    assert row is not None
    return tuple(row)


async def instance_ids(store: SqliteStore) -> list[str]:
    history = store.history
    found = await history.read_history("", [E], None, TemporalQuery(timeproperty="modifiedAt"))
    return [inst.instance_id for inst in found.get(E, [])]


def number(instance_id: str) -> int:
    """The number of an instanceId the store gave."""
    found = instance_number(instance_id)
    assert found is not None, instance_id
    return found


async def test_an_update_leaves_the_record_row_and_reads_the_live_modified_at(
        tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        await write(store, 1, "2026-01-01T00:00:00Z")
        stored = record_row(tmp_path / "b.db")
        await write(store, 2, "2026-01-01T00:05:00Z")
        await write(store, 3, "2026-01-01T00:10:00Z")
        assert record_row(tmp_path / "b.db") == stored  # no write of the record's row
        (record,) = await store.history.temporal_entities("", ids=[E])
        assert (record.created_at, record.modified_at, record.deleted_at) == (
            CREATED, "2026-01-01T00:10:00Z", None)
        # a deletion is written: the record keeps the deletion's time once the Entity is gone
        await store.modify("", E, lambda current: None,
                           record=lambda b, a, n: history_of_write(b, a, "2026-01-02T00:00:00Z", n))
        (record,) = await store.history.temporal_entities("", ids=[E])
        assert (record.modified_at, record.deleted_at) == (
            "2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z")
    finally:
        await store.close()


async def test_instances_have_no_number_index_and_numbers_go_on_after_a_restart(
        tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    first = await two_writes_in(path)
    with sqlite3.connect(path) as conn:
        indexes = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            " AND tbl_name = 'temporal_instances'")]
    assert indexes == []
    store = SqliteStore(path)
    await store.open()
    try:
        await write(store, 3, "2026-01-01T00:10:00Z")
        ids = await instance_ids(store)
        assert ids[:2] == first and len(set(ids)) == 3
        numbers = [number(i) for i in ids]
        assert numbers[2] > max(numbers[:2])
    finally:
        await store.close()


async def test_a_file_of_the_version_before_opens_and_keeps_its_instances(
        tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    old = await two_writes_in(path)
    # what the version before issue 15 left: the instanceId index, no number in meta
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE UNIQUE INDEX temporal_instance_id ON temporal_instances (iid)")
        conn.execute("DELETE FROM meta WHERE key = 'temporal_last_iid'")
    store = SqliteStore(path)
    await store.open()
    try:
        found = await store.history.history_instance("", E, P, old[1])
        assert found is not None and found.value == 2
        await write(store, 3, "2026-01-01T00:10:00Z")
        ids = await instance_ids(store)
        assert ids[:2] == old and len(set(ids)) == 3
        assert await store.history.delete_history_instance("", E, P, old[0])
        assert await instance_ids(store) == ids[1:]
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master"
                            " WHERE name = 'temporal_instance_id'").fetchone() == (0,)
