"""History packs compressed by a dictionary trained on the store's own packs
(storage/sqlite/pack_codec.py): a pack reads back as it was written, whatever the
writes; a file keeps the dictionary its frames need, rolled-back transactions and
other processes included; a file of the previous schema reads as before."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sqlite_history_packs import (
    NAMES,
    _steps,
    attribute,
    entity,
    history,
    reads_as_in_the_memory_store,
    replace_entity,
)

from ngsi_ld.temporal import TemporalQuery
from storage import SqliteStore
from storage.sqlite import pack_codec, sql
from storage.sqlite.pack_codec import PackCodec, PackDecodeError, decode

_INSERT = "INSERT INTO temporal_packs (tenant, entity_id, iid, tmin, body) VALUES (?, ?, ?, ?, ?)"


def body(n: int) -> bytes:
    """A pack as the writer makes most of them: an entity's document."""
    return orjson.dumps(entity(f"urn:ngsi-ld:Lamp:{n}", {
        name: [attribute(n * k % 97, n % 60)] for k, name in enumerate(NAMES)}, n % 60))


def rows(first: int, count: int) -> list[tuple[Any, ...]]:
    return [("", f"urn:ngsi-ld:Lamp:{n}", n, 0, body(n)) for n in range(first, first + count)]


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(tmp_path / "c.db", isolation_level=None)) as opened:
        opened.execute("CREATE TABLE temporal_packs (tenant TEXT NOT NULL, entity_id TEXT"
                       " NOT NULL, iid INTEGER NOT NULL, tmin INTEGER NOT NULL, body BLOB"
                       " NOT NULL, PRIMARY KEY (tenant, entity_id, iid))")
        pack_codec.create(opened)
        yield opened


def write(conn: sqlite3.Connection, codec: PackCodec, packs: list[tuple[Any, ...]]) -> None:
    conn.execute("BEGIN")
    conn.executemany(_INSERT, codec.encode(conn, packs))
    conn.execute("COMMIT")


def stored(conn: sqlite3.Connection) -> list[bytes]:
    return [bytes(b) for (b,) in conn.execute("SELECT body FROM temporal_packs ORDER BY iid")]


def test_packs_are_stored_as_written_until_a_dictionary_is_trained_then_compressed(
        conn: sqlite3.Connection) -> None:
    codec = PackCodec()
    written = rows(0, pack_codec.SAMPLES - 1)
    write(conn, codec, written)
    assert codec.dict_id == 0
    assert stored(conn) == [r[-1] for r in written]
    assert conn.execute("SELECT COUNT(*) FROM pack_dicts").fetchone() == (0,)
    more = rows(pack_codec.SAMPLES - 1, 200)
    write(conn, codec, more)
    assert codec.dict_id != 0
    (dict_id,) = conn.execute("SELECT id FROM pack_dicts").fetchone()
    assert dict_id == codec.dict_id
    later = stored(conn)[pack_codec.SAMPLES:]  # the transaction that trained it, and on
    assert all(len(b) < len(body(0)) / 4 for b in later)
    assert {zstandard.get_frame_parameters(b).dict_id for b in later} == {dict_id}
    assert decode(conn, stored(conn)) == [r[-1] for r in written + more]


def test_short_and_incompressible_bodies_stay_as_written(conn: sqlite3.Connection) -> None:
    codec = PackCodec()
    write(conn, codec, rows(0, pack_codec.SAMPLES))
    assert codec.dict_id != 0
    short = b'[["https://example.org/a0",{"type":"Property","value":1}]]'
    assert len(short) < pack_codec.MIN_SIZE
    noise = orjson.dumps([["a", {"type": "Property", "value": bytes(range(256)).hex() * 3}]])
    odd = [("", "urn:x:1", 10_000, 0, short), ("", "urn:x:2", 10_001, 0, noise)]
    out = codec.encode(conn, odd)
    assert out[0] == odd[0]
    assert out[1][-1] == noise or len(out[1][-1]) < len(noise)
    assert decode(conn, [r[-1] for r in out]) == [short, noise]


def test_a_rolled_back_training_leaves_no_frame_without_its_dictionary(
        conn: sqlite3.Connection) -> None:
    codec = PackCodec()
    conn.execute("BEGIN")
    conn.executemany(_INSERT, codec.encode(conn, rows(0, pack_codec.SAMPLES)))
    conn.execute("ROLLBACK")
    assert codec.dict_id != 0  # the writer keeps its dictionary...
    assert conn.execute("SELECT COUNT(*) FROM pack_dicts").fetchone() == (0,)
    write(conn, codec, rows(1000, 5))
    # ... and the next transaction that uses it stores it again
    assert conn.execute("SELECT id FROM pack_dicts").fetchall() == [(codec.dict_id,)]
    assert decode(conn, stored(conn)) == [body(n) for n in range(1000, 1005)]


def test_a_second_writer_takes_the_files_dictionary(conn: sqlite3.Connection) -> None:
    first = PackCodec()
    write(conn, first, rows(0, pack_codec.SAMPLES))
    second = PackCodec()  # another process, or the next run, on the same file
    write(conn, second, rows(5000, 3))
    assert second.dict_id == first.dict_id
    assert conn.execute("SELECT COUNT(*) FROM pack_dicts").fetchone() == (1,)
    assert decode(conn, stored(conn)[-3:]) == [body(n) for n in range(5000, 5003)]


def test_a_frame_of_an_unknown_dictionary_or_a_broken_frame_is_an_error(
        conn: sqlite3.Connection, tmp_path: Path) -> None:
    codec = PackCodec()
    write(conn, codec, rows(0, pack_codec.SAMPLES))
    frame = stored(conn)[-1]
    with closing(sqlite3.connect(tmp_path / "other.db")) as other:
        pack_codec.create(other)
        with pytest.raises(PackDecodeError, match="does not hold"):
            decode(other, [frame])
    with pytest.raises(PackDecodeError, match="does not decompress"):
        decode(conn, [frame[:-8]])


def prime(path: Path) -> int:
    """A store file holding a dictionary trained on pack-like documents (its writer
    takes it at its first pack, rule 2): every pack of a test is then compressed."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE temporal_packs (tenant TEXT NOT NULL, entity_id TEXT"
                     " NOT NULL, iid INTEGER NOT NULL, tmin INTEGER NOT NULL, body BLOB"
                     " NOT NULL, PRIMARY KEY (tenant, entity_id, iid))")
        pack_codec.create(conn)
        codec = PackCodec()
        write(conn, codec, rows(0, pack_codec.SAMPLES))
        conn.execute("DELETE FROM temporal_packs")
        return codec.dict_id


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=_steps, attrs=st.none() | st.lists(st.sampled_from(NAMES), min_size=1,
                                                 max_size=2, unique=True))
async def test_compressed_packs_read_back_as_in_the_memory_store(
        tmp_path_factory: Any, steps: list[Any], attrs: list[str] | None) -> None:
    path = tmp_path_factory.mktemp("z") / "b.db"
    prime(path)
    await reads_as_in_the_memory_store(SqliteStore(path), steps, attrs)


async def test_a_store_compresses_its_packs_and_reads_them_after_a_restart(
        tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    dict_id = prime(path)
    store = SqliteStore(path)
    await store.open()
    try:
        for minute in range(3):
            await replace_entity(store, "urn:e:1", {
                name: [attribute(minute * k, minute)] for k, name in enumerate(NAMES)}, minute)
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as conn:
        frames = stored(conn)
        assert len(frames) == 3
        assert {zstandard.get_frame_parameters(b).dict_id for b in frames} == {dict_id}
    store = SqliteStore(path)
    await store.open()
    try:
        found = await history(store).read_history("", ["urn:e:1"], None, TemporalQuery())
        assert sorted((i.attribute, i.value) for i in found["urn:e:1"]) == sorted(
            (name, minute * k) for minute in range(3) for k, name in enumerate(NAMES))
    finally:
        await store.close()


async def test_a_file_of_schema_9_opens_and_reads_its_packs(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    store = SqliteStore(path)
    await store.open()
    try:
        await replace_entity(store, "urn:e:1", {NAMES[0]: [attribute(1, 0)],
                                                NAMES[1]: [attribute(2, 0)]}, 0)
    finally:
        await store.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:  # as schema 9 left it
        conn.execute("DROP TABLE pack_dicts")
        conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
        (old,) = stored(conn)
        assert old.startswith(b"{")
    store = SqliteStore(path)
    await store.open()
    try:
        await replace_entity(store, "urn:e:2", {NAMES[0]: [attribute(3, 1)],
                                                NAMES[1]: [attribute(4, 1)]}, 1)
        found = await history(store).read_history("", ["urn:e:1", "urn:e:2"], None,
                                                  TemporalQuery())
        assert {e: sorted(i.value for i in found[e]) for e in found} == {
            "urn:e:1": [1, 2], "urn:e:2": [3, 4]}
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == (str(sql.SCHEMA_VERSION),)


def test_a_writer_about_to_train_takes_the_dictionary_another_trained_meanwhile(
        conn: sqlite3.Connection) -> None:
    late = PackCodec()
    write(conn, late, rows(0, 10))  # looked at the file: no dictionary yet
    early = PackCodec()
    write(conn, early, rows(100, pack_codec.SAMPLES))  # another process trains one
    write(conn, late, rows(1000, pack_codec.SAMPLES))  # enough samples: takes that one
    assert late.dict_id == early.dict_id != 0
    assert conn.execute("SELECT COUNT(*) FROM pack_dicts").fetchone() == (1,)
