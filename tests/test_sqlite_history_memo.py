"""The writer's memo of history records and series ids (storage/sqlite/history_memo.py):
what it remembers never outlives a rollback, nor a commit of another connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_sqlite_history_layout import E, instance_ids, number, state, write

from ngsi_ld.temporal import history_of_write
from storage import SqliteStore


async def test_a_rolled_back_job_leaves_nothing_remembered(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        history = store.history
        now = "2026-01-01T00:00:00Z"

        def run(conn: sqlite3.Connection) -> None:
            recorded = history_of_write(None, state(1, now), now, history.new_instance_id)
            assert recorded is not None
            history.record(conn, "", [recorded], {E: now})  # notes the new series
            raise RuntimeError("the job fails after recording")

        with pytest.raises(RuntimeError):
            await store._write(run)
        assert await instance_ids(store) == []
        # the series noted in the rolled-back job is not taken for a stored one
        await write(store, 2, "2026-01-01T00:05:00Z")
        await write(store, 3, "2026-01-01T00:10:00Z")
        assert len(await instance_ids(store)) == 2
        (record,) = await history.temporal_entities("", ids=[E])
        assert record.modified_at == "2026-01-01T00:10:00Z"
    finally:
        await store.close()


async def test_a_commit_of_another_store_on_the_file_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    first, second = SqliteStore(path), SqliteStore(path)
    await first.open()
    await second.open()
    try:
        await write(first, 1, "2026-01-01T00:00:00Z")  # first's memo: E's record and series
        assert await second.history.delete_history("", E)  # gone, series ids too
        await write(first, 2, "2026-01-01T00:05:00Z")  # the entity is new to the history
        assert len(await instance_ids(first)) == 1
        (record,) = await first.history.temporal_entities("", ids=[E])
        assert record.created_at is not None and record.modified_at == "2026-01-01T00:05:00Z"
    finally:
        await second.close()
        await first.close()


def meta_last_iid(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (value,) = conn.execute(
            "SELECT value FROM meta WHERE key = 'temporal_last_iid'").fetchone()
    return int(value)


async def test_instance_numbers_are_reserved_in_blocks_and_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    store = SqliteStore(path)
    await store.open()
    try:
        await write(store, 1, "2026-01-01T00:00:00Z")
        reserved = meta_last_iid(path)
        for minute in range(1, 6):  # later writes within the reservation leave meta alone
            await write(store, minute + 1, f"2026-01-01T00:{minute:02}:00Z")
        assert meta_last_iid(path) == reserved
        used = [number(i) for i in await instance_ids(store)]
        assert len(set(used)) == 6 and max(used) <= reserved
    finally:
        await store.close()
    store = SqliteStore(path)
    await store.open()
    try:  # a restart continues after the reservation
        await write(store, 7, "2026-01-01T00:30:00Z")
        after = [number(i) for i in await instance_ids(store)]
        assert after[-1] > reserved and len(set(after)) == 7
    finally:
        await store.close()


async def test_processes_sharing_the_file_never_give_the_same_number(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    first, second = SqliteStore(path), SqliteStore(path)
    first.share("first")
    second.share("second")
    await first.open()
    await second.open()
    try:
        for minute, store in enumerate((first, second, first, first, second, second, first)):
            await write(store, minute, f"2026-01-01T00:{minute:02}:00Z")
        used = await instance_ids(first)
        assert len(used) == 7 and len(set(used)) == 7
    finally:
        await second.close()
        await first.close()
