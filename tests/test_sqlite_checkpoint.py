"""storage.sqlite.checkpoint: WAL checkpoints on their own thread, not in the writer's COMMITs."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from storage_contract import create, entity

from storage import DEFAULT_TENANT, SqliteStore
from storage.sqlite import checkpoint
from storage.sqlite.checkpoint import frames
from storage.sqlite.wal import WalIndexView


def test_frames_reads_the_wal_size_from_the_index_header(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    view = WalIndexView(tmp_path / "db.sqlite")
    try:
        conn.execute("CREATE TABLE t (x)")
        first = frames(view.header())
        conn.execute("INSERT INTO t VALUES (zeroblob(20000))")  # 5 pages and more
        second = frames(view.header())
        assert first is not None and second is not None and second >= first + 5
        (_, logged, _) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert logged == second  # what SQLite counts
    finally:
        view.close()
        conn.close()
    assert frames(None) is None and frames(b"short") is None


async def test_the_checkpointer_copies_the_wal_while_the_writer_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "PAGES", 20)
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        # the writer's own automatic checkpoint is only the bound
        limit = await store._write(
            lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        assert limit == checkpoint.WRITER_PAGES
        await asyncio.gather(*(
            store.modify(DEFAULT_TENANT, f"urn:ngsi-ld:T:{n}",
                         create(entity(f"urn:ngsi-ld:T:{n}", big="x" * 3000)))
            for n in range(60)))
        for _ in range(200):  # the checkpointer runs on its thread: wait for it
            if store._checkpointer.count:
                break
            await asyncio.sleep(0.01)
        assert store._checkpointer.count >= 1
    finally:
        await store.close()
    # every entity is there, also when the file is read without its WAL
    conn = sqlite3.connect(tmp_path / "b.db")
    try:
        (count,) = conn.execute("SELECT COUNT(*) FROM entities").fetchone()
    finally:
        conn.close()
    assert count == 60


async def test_the_store_reopens_and_reads_after_checkpoints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "PAGES", 5)
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        for n in range(30):
            await store.modify(DEFAULT_TENANT, f"urn:ngsi-ld:T:{n}",
                               create(entity(f"urn:ngsi-ld:T:{n}", n=n)))
    finally:
        await store.close()
    again = SqliteStore(tmp_path / "b.db")
    await again.open()
    try:
        found = await again.get_entity(DEFAULT_TENANT, "urn:ngsi-ld:T:29")
        assert found is not None and found["attrs"]["https://example.org/n"][0]["value"] == 29
    finally:
        await again.close()
