"""The SQLite statements of an entity write (storage.sqlite.sql.write_entity)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from storage.sqlite import sql


def _entity(entity_id: str, value: int) -> dict[str, object]:
    attr = {"type": "Property", "value": value}
    return {"id": entity_id, "type": ["https://example.org/T"], "attrs": {"urn:x:p": [attr]}}


def test_writes_in_one_transaction_get_distinct_increasing_versions(tmp_path: Path) -> None:
    conn = sql.connect(tmp_path / "x.db", readonly=False)
    conn.execute("BEGIN IMMEDIATE")
    sql.create_schema(conn)
    ids = [f"urn:ngsi-ld:T:{n}" for n in range(5)]
    for n, entity_id in enumerate(ids):
        sql.write_entity(conn, "", entity_id, None, _entity(entity_id, n))
    sql.write_entity(conn, "", ids[0], _entity(ids[0], 0), _entity(ids[0], 9))
    conn.execute("COMMIT")
    versions = dict(conn.execute("SELECT id, version FROM entities").fetchall())
    assert sorted(versions.values()) == sorted(set(versions.values()))
    assert [versions[i] for i in ids[1:]] == sorted(versions[i] for i in ids[1:])
    assert versions[ids[0]] > max(versions[i] for i in ids[1:])
    assert sql.next_version(conn) > max(versions.values())
    rows = conn.execute("SELECT n.name, v.val FROM attr_values v JOIN names n ON n.nid = v.attr"
                        " WHERE v.id = ?", (ids[0],)).fetchall()
    assert rows == [("urn:x:p", 9)]


def test_versions_stay_distinct_across_transactions_savepoints_and_connections(
        tmp_path: Path) -> None:
    path = tmp_path / "z.db"
    first, second = sql.connect(path, readonly=False), sql.connect(path, readonly=False)
    first.execute("BEGIN IMMEDIATE")
    sql.create_schema(first)
    first.execute("COMMIT")
    seen: list[int] = []
    for n in range(6):  # two writers (two processes) taking turns, as on a shared file
        conn = (first, second)[n % 2]
        conn.execute("BEGIN IMMEDIATE")
        sql.begin_versions(conn)
        conn.execute("SAVEPOINT job")  # a job rolled back: its versions are not reused
        sql.write_entity(conn, "", f"urn:r:{n}", None, _entity(f"urn:r:{n}", n))
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        for k in range(3):
            sql.write_entity(conn, "", f"urn:w:{n}:{k}", None, _entity(f"urn:w:{n}:{k}", k))
        conn.execute("COMMIT")
        sql.end_versions(conn, committed=True)
        seen = [v for (v,) in first.execute("SELECT version FROM entities ORDER BY rowid")]
    assert len(seen) == 18 and len(set(seen)) == 18 and seen == sorted(seen)


def test_a_writer_keeps_its_range_of_versions_until_a_rollback_or_another_writer(
        tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    conn, other = sql.connect(path, readonly=False), sql.connect(path, readonly=False)
    conn.execute("BEGIN IMMEDIATE")
    sql.create_schema(conn)
    conn.execute("COMMIT")

    def transaction(writer: sqlite3.Connection, n: int, commit: bool = True) -> None:
        writer.execute("BEGIN IMMEDIATE")
        sql.begin_versions(writer)
        sql.write_entity(writer, "", f"urn:v:{n}", None, _entity(f"urn:v:{n}", n))
        writer.execute("COMMIT" if commit else "ROLLBACK")
        sql.end_versions(writer, committed=commit)

    def counter() -> int:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'entity_version'")
                   .fetchone()[0])

    transaction(conn, 0)
    taken = counter()
    transaction(conn, 1)  # the same range: the counter is not taken again
    assert counter() == taken
    transaction(conn, 2, commit=False)  # a rollback: the next transaction takes a new T
    transaction(conn, 3)
    assert counter() == taken + 1
    transaction(other, 4)  # another writer committed: a new T, above the other's
    transaction(conn, 5)
    assert counter() == taken + 3
    versions = [v for (v,) in conn.execute("SELECT version FROM entities ORDER BY rowid")]
    assert len(set(versions)) == 5 and versions == sorted(versions)


def test_a_rolled_back_write_leaves_no_version_behind(tmp_path: Path) -> None:
    conn = sql.connect(tmp_path / "y.db", readonly=False)
    conn.execute("BEGIN IMMEDIATE")
    sql.create_schema(conn)
    sql.write_entity(conn, "", "urn:a", None, _entity("urn:a", 1))
    conn.execute("COMMIT")
    (kept,) = conn.execute("SELECT version FROM entities").fetchone()
    conn.execute("BEGIN IMMEDIATE")
    sql.write_entity(conn, "", "urn:a", _entity("urn:a", 1), _entity("urn:a", 2))
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT version FROM entities").fetchone() == (kept,)
    assert sql.next_version(conn) > kept


def test_a_writer_connects_while_another_process_holds_a_write_lock(tmp_path: Path) -> None:
    """SQLite refuses the switch to WAL at once (no busy wait) while another connection
    holds a write lock: two brokers starting together on one file met this."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.2, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        conn = sql.connect(path, readonly=False)
    finally:
        release.join()
        holder.close()
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    conn.close()
