"""Packed instances of the embedded store's history (storage/sqlite/history_packs.py):
a write of many attributes is one row, a write of one attribute its series' row, and
every read and change of the history sees both as the memory store sees its
instances, in any order of writes, reads and changes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsi_ld.temporal import (
    Aggregation,
    Instance,
    TemporalQuery,
    format_micros,
    parse_duration,
    recorder_at,
    select,
    temporal_history,
    to_micros,
)
from storage import MemoryStore, SqliteStore, Store
from storage.sqlite.sql import SCHEMA_VERSION
from storage.temporal import TemporalHistory, instance_number

T = "https://example.org/T"
NAMES = [f"https://example.org/a{n}" for n in range(4)]
DAY = "2026-01-01T00:00:00Z"
START = to_micros(DAY)
MINUTE = 60_000_000


def at(minute: int) -> str:
    return format_micros(START + minute * MINUTE)


def attribute(value: Any, minute: int, dataset_id: str | None = None,
              unit: bool = False) -> dict[str, Any]:
    inst: dict[str, Any] = {"type": "Property", "value": value, "observedAt": at(minute),
                            "createdAt": DAY, "modifiedAt": at(minute)}
    if dataset_id is not None:
        inst["datasetId"] = dataset_id
    if unit:  # a member of the instance, and a time not in its shortest form
        inst["unitCode"] = "CEL"
        inst["createdAt"] = DAY.replace("Z", ".000Z")
    return inst


def entity(entity_id: str, attrs: dict[str, list[dict[str, Any]]], minute: int) -> dict[str, Any]:
    return {"id": entity_id, "type": [T], "createdAt": DAY, "modifiedAt": at(minute),
            "attrs": attrs}


def history(store: Store) -> TemporalHistory:
    found = store.history
    assert found is not None
    return found


async def replace_entity(store: Store, entity_id: str, attrs: dict[str, list[dict[str, Any]]],
                         minute: int) -> None:
    """A create or replace of the whole Entity (what a batch upsert writes)."""
    await store.modify_many("", [(entity_id, lambda _: entity(entity_id, attrs, minute))],
                            record=recorder_at(at(minute)))


async def patch(store: Store, entity_id: str, name: str, inst: dict[str, Any],
                minute: int) -> None:
    """A change of one attribute instance (what a PATCH of one attribute writes)."""
    def mutate(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None:
            return entity(entity_id, {name: [inst]}, minute)
        attrs = dict(current["attrs"])
        kept = [i for i in attrs.get(name, []) if i.get("datasetId") != inst.get("datasetId")]
        attrs[name] = [*kept, inst]
        return {**current, "modifiedAt": at(minute), "attrs": attrs}

    await store.modify("", entity_id, mutate, record=recorder_at(at(minute)))


async def delete(store: Store, entity_id: str, minute: int) -> None:
    await store.modify("", entity_id, lambda _: None, record=recorder_at(at(minute)))


def seen(instances: list[Instance]) -> list[tuple[Any, ...]]:
    """What a user sees of instances, but their numbers (each store numbers its own)."""
    # a value by its type and equality: SQLite keeps no -0.0 (before packs too)
    return sorted((i.attribute, i.dataset_id or "", i.kind, type(i.value).__name__,
                   repr(0.0 if i.value == 0 and isinstance(i.value, float) else i.value),
                   i.observed_at or "",
                   i.created_at or "", i.modified_at or "", i.deleted_at or "",
                   repr(sorted(i.members.items()))) for i in instances)


async def read_all(store: Store, ids: list[str], query: TemporalQuery,
                   attrs: list[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """What a read gives, in the query's window (a store may give more, never less)."""
    found = await history(store).read_history("", ids, attrs, query)
    out = {entity_id: seen([i for series in select(instances, query).values() for i in series
                            if attrs is None or i.attribute in attrs])
           for entity_id, instances in found.items()}
    return {entity_id: rows for entity_id, rows in out.items() if rows}


QUERIES = [
    TemporalQuery(),
    TemporalQuery(timeproperty="modifiedAt"),
    TemporalQuery("between", START + 5 * MINUTE, START + 40 * MINUTE),
    TemporalQuery("after", START + 20 * MINUTE),
]

# one step: ("put", entity, {attribute: (value, minute offset, dataset, unitCode)}),
# ("patch", entity, attribute, value, dataset, unitCode), ("delete", entity),
# ("read", entity), and the temporal API's: ("post", entity, attribute, value, minute
# offset) (an upsert: replaces a stored instance of the same observedAt, packed or
# not), ("drop", entity, attribute) (deleteAttrsTemporal), ("retain", minutes back)
_value = st.one_of(st.integers(-100, 100), st.floats(-1e3, 1e3, allow_nan=False),
                   st.text(max_size=3), st.none(), st.booleans())
_dataset = st.sampled_from([None, "urn:d:1"])
_steps = st.lists(st.one_of(
    st.tuples(st.just("put"), st.integers(0, 2), st.dictionaries(
        st.sampled_from(NAMES), st.tuples(_value, st.integers(0, 3), _dataset, st.booleans()),
        min_size=1)),
    st.tuples(st.just("patch"), st.integers(0, 2), st.sampled_from(NAMES), _value, _dataset,
              st.booleans()),
    st.tuples(st.just("delete"), st.integers(0, 2)),
    st.tuples(st.just("read"), st.integers(0, 2)),
    st.tuples(st.just("post"), st.integers(0, 2), st.sampled_from(NAMES), _value,
              st.integers(-3, 3)),
    st.tuples(st.just("drop"), st.integers(0, 2), st.sampled_from(NAMES)),
    st.tuples(st.just("retain"), st.integers(0, 4)),
), min_size=1, max_size=14)


async def run_steps(store: Store, steps: list[Any]) -> None:
    for minute, step in enumerate(steps):
        entity_id = f"urn:e:{step[1]}"
        if step[0] == "put":
            await replace_entity(store, entity_id, {
                name: [attribute(value, minute + offset, dataset, unit)]
                for name, (value, offset, dataset, unit) in step[2].items()}, minute)
        elif step[0] == "patch":
            _, _, name, value, dataset, unit = step
            await patch(store, entity_id, name, attribute(value, minute, dataset, unit), minute)
        elif step[0] == "delete":
            await delete(store, entity_id, minute)
        elif step[0] == "post":
            _, _, name, value, offset = step
            # on the half minutes: the stores part ways when an upsert meets two stored
            # instances of its observedAt (which one it replaces), packed or not
            inst = attribute(value, max(0, minute + offset))
            inst["observedAt"] = format_micros(to_micros(inst["observedAt"]) + MINUTE // 2)
            fragment = {"id": entity_id, "type": [T], "attrs": {name: [inst]}}
            h = history(store)
            await h.add_history("", [temporal_history(fragment, at(minute), h.new_instance_id)])
        elif step[0] == "drop":
            await history(store).delete_history_attribute("", entity_id, step[2], None, True)
        elif step[0] == "retain":  # the instances observed (or written) before go
            await history(store).drop_history_before(START + max(0, minute - step[1]) * MINUTE)
        else:  # a read in between: the SQLite store settles this Entity's packs
            await history(store).read_history("", [entity_id], None, TemporalQuery())


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=_steps, attrs=st.none() | st.lists(st.sampled_from(NAMES), min_size=1,
                                                 max_size=2, unique=True))
async def test_any_writes_read_back_as_in_the_memory_store(
        tmp_path_factory: Any, steps: list[Any], attrs: list[str] | None) -> None:
    await reads_as_in_the_memory_store(SqliteStore(tmp_path_factory.mktemp("p") / "b.db"),
                                       steps, attrs)


async def reads_as_in_the_memory_store(store: SqliteStore, steps: list[Any],
                                       attrs: list[str] | None) -> None:
    """Run ``steps`` on ``store`` (opened and closed here) and on a memory store; every
    read of the history answers alike."""
    oracle = MemoryStore()
    await oracle.open()
    await store.open()
    try:
        await run_steps(oracle, steps)
        await run_steps(store, steps)
        ids = [f"urn:e:{n}" for n in range(3)]
        for query in QUERIES:
            got = await read_all(store, ids, query, attrs)
            assert got == await read_all(oracle, ids, query, attrs), (steps, query, attrs)
        last = TemporalQuery("after", START, last_n=1)
        for entity_id in ids:  # the latest instant of each series: packed or not
            got = await history(store).read_history("", [entity_id], attrs, last, per_series=1)
            want = await history(oracle).read_history("", [entity_id], attrs, last)
            assert latest(got.get(entity_id, []), last) == latest(want.get(entity_id, []), last)
        records = await history(store).temporal_entities("")
        assert records == await history(oracle).temporal_entities("")
        numbers = [i.instance_id for found in (await history(store).read_history(
            "", ids, None, QUERIES[0])).values() for i in found]
        assert len(numbers) == len(set(numbers))  # packed or not, every number once
    finally:
        await store.close()
        await oracle.close()


def latest(instances: list[Instance], query: TemporalQuery) -> dict[tuple[str, str], str]:
    """The latest observedAt of each series in the window of ``query``."""
    out: dict[tuple[str, str], str] = {}
    for series in select(instances, query).values():
        for inst in series:
            key = (inst.attribute, inst.dataset_id or "")
            out[key] = max(out.get(key, ""), inst.observed_at or "")
    return out


def table_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("temporal_packs", "temporal_series", "temporal_instances")}


FOUR = {name: [attribute(n, 0)] for n, name in enumerate(NAMES)}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An open store on ``tmp_path / "b.db"`` (where :func:`table_counts` looks)."""
    opened = SqliteStore(tmp_path / "b.db")
    await opened.open()
    yield opened
    await opened.close()


async def test_a_write_of_many_attributes_is_one_row_a_patch_its_series_row(
        store: SqliteStore, tmp_path: Path) -> None:
    await replace_entity(store, "urn:e:1", FOUR, 0)
    await replace_entity(store, "urn:e:2", FOUR, 0)
    assert table_counts(tmp_path / "b.db") == {
        "temporal_packs": 2, "temporal_series": 0, "temporal_instances": 0}
    await patch(store, "urn:e:1", NAMES[0], attribute(9, 5), 5)
    assert table_counts(tmp_path / "b.db") == {
        "temporal_packs": 2, "temporal_series": 1, "temporal_instances": 1}
    # a read settles the packs of the Entities it reads, and only theirs
    found = await history(store).read_history("", ["urn:e:1"], [NAMES[0]], TemporalQuery())
    assert sorted(i.value for i in found["urn:e:1"]) == [0, 9]
    assert table_counts(tmp_path / "b.db") == {
        "temporal_packs": 1, "temporal_series": 4, "temporal_instances": 5}


async def test_instance_operations_find_packed_instances(store: SqliteStore) -> None:
    await replace_entity(store, "urn:e:1", FOUR, 0)
    await replace_entity(store, "urn:e:1", {
        name: [attribute(10 + n, 30)] for n, name in enumerate(NAMES)}, 30)
    h = history(store)
    # the instanceIds a read gives, found again one by one (packed or not)
    found = (await h.read_history("", ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
    assert len(found) == 8
    await replace_entity(store, "urn:e:1", FOUR, 60)  # packed again after the read
    by_value = {(i.attribute, i.value): i for i in found}
    first = by_value[NAMES[1], 1]
    assert await h.history_instance("", "urn:e:1", NAMES[1], first.instance_id) == first
    assert await h.replace_history_instance("", "urn:e:1", replace(first, value=100))
    assert await h.delete_history_instance("", "urn:e:1", NAMES[2],
                                           by_value[NAMES[2], 12].instance_id)
    after = (await h.read_history("", ["urn:e:1"], [NAMES[1], NAMES[2]],
                                  TemporalQuery()))["urn:e:1"]
    assert sorted((i.attribute, i.value) for i in after) == [
        (NAMES[1], 1), (NAMES[1], 11), (NAMES[1], 100), (NAMES[2], 2), (NAMES[2], 2)]
    await replace_entity(store, "urn:e:1", {
        name: [attribute(20 + n, 90)] for n, name in enumerate(NAMES)}, 90)
    assert await h.delete_history_attribute("", "urn:e:1", NAMES[3], None, True) == 4
    query = TemporalQuery("after", START)
    aggregation = Aggregation(("totalCount", "sum"), parse_duration("PT1H"))
    await replace_entity(store, "urn:e:1", FOUR, 120)
    summed = await h.aggregate_history("", ["urn:e:1"], None, query, aggregation)
    assert summed is not None  # from the rollups, packed instances counted
    (series,) = summed["urn:e:1"][NAMES[0]]
    # observed at minutes 0 (three writes), 30 and 90
    assert series.results["totalCount"] == [(4, START, START + 60 * MINUTE),
                                            (1, START + 60 * MINUTE, START + 120 * MINUTE)]
    assert series.results["sum"] == [(10.0, START, START + 60 * MINUTE),
                                     (20.0, START + 60 * MINUTE, START + 120 * MINUTE)]
    await replace_entity(store, "urn:e:2", FOUR, 0)
    assert await h.delete_history("", "urn:e:2")
    assert await h.read_history("", ["urn:e:2"], None, TemporalQuery()) == {}


async def test_retention_drops_packed_instances_before_the_cutoff(store: SqliteStore) -> None:
    for minute in (0, 20, 40):
        await replace_entity(store, "urn:e:1", {
            name: [attribute(minute, minute)] for name in NAMES}, minute)
    h = history(store)
    assert await h.drop_history_before(START + 30 * MINUTE) == 8
    left = (await h.read_history("", ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
    assert sorted({i.value for i in left}) == [40]
    assert len(left) == 4


async def test_numbers_of_packed_instances_are_never_given_again(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    for minute in (0, 10):
        store = SqliteStore(path)
        await store.open()
        try:
            await replace_entity(store, "urn:e:1", {
                name: [attribute(minute, minute)] for name in NAMES}, minute)
        finally:
            await store.close()
    store = SqliteStore(path)
    await store.open()
    try:
        found = (await history(store).read_history("", ["urn:e:1"], None,
                                                   TemporalQuery()))["urn:e:1"]
        assert len({i.instance_id for i in found}) == 8
    finally:
        await store.close()


async def test_a_file_without_the_packs_table_opens_and_reads_as_before(
        tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    store = SqliteStore(path)
    await store.open()
    try:
        await replace_entity(store, "urn:e:1", FOUR, 0)
        await patch(store, "urn:e:1", NAMES[0], attribute(7, 3), 3)
        before = await read_all(store, ["urn:e:1"], TemporalQuery())  # settles the packs
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:  # what the version before this table wrote
        conn.execute("DROP TABLE temporal_packs")
    store = SqliteStore(path)
    await store.open()
    try:
        assert await read_all(store, ["urn:e:1"], TemporalQuery()) == before
        await replace_entity(store, "urn:e:1", {  # and packs from now on
            name: [attribute(10 + n, 10)] for n, name in enumerate(NAMES)}, 10)
        assert table_counts(path)["temporal_packs"] == 1
        after = await read_all(store, ["urn:e:1"], TemporalQuery())
        assert len(after["urn:e:1"]) == len(before["urn:e:1"]) + 4
    finally:
        await store.close()


async def test_a_temporal_upsert_replaces_a_packed_instance_of_its_observed_at(
        store: SqliteStore, tmp_path: Path) -> None:
    await replace_entity(store, "urn:e:1", FOUR, 0)  # packed, all observed at minute 0
    h = history(store)
    fragment = {"id": "urn:e:1", "type": [T], "attrs": {NAMES[2]: [attribute(99, 0)]}}
    await h.add_history("", [temporal_history(fragment, at(5), h.new_instance_id)])
    assert table_counts(tmp_path / "b.db")["temporal_packs"] == 0
    found = (await h.read_history("", ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
    by_name = {i.attribute: i for i in found}
    assert len(found) == 4  # replaced, not added (5.6.11)
    assert by_name[NAMES[2]].value == 99
    assert by_name[NAMES[2]].created_at == DAY  # the replaced instance's createdAt
    assert sorted(instance_number(i.instance_id) or 0 for i in found) == [1, 2, 3, 4]


async def _three_writes(store: SqliteStore) -> None:
    await replace_entity(store, "urn:e:1", FOUR, 0)
    await replace_entity(store, "urn:e:2", FOUR, 5)
    await replace_entity(store, "urn:e:1", {
        name: [attribute(10 + n, 10)] for n, name in enumerate(NAMES)}, 10)


async def _three_writes_in(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        await _three_writes(store)
    finally:
        await store.close()


@asynccontextmanager
async def _with_reference(path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """The file ``path`` opened, and beside it a file of the same writes never changed."""
    reference = SqliteStore(path.with_name("reference.db"))
    await reference.open()
    store = SqliteStore(path)
    await store.open()
    try:
        await _three_writes(reference)
        yield store, reference
    finally:
        await store.close()
        await reference.close()


async def _assert_reads_alike(store: SqliteStore, reference: SqliteStore) -> None:
    ids = ["urn:e:1", "urn:e:2"]
    for query in (TemporalQuery(), TemporalQuery("after", START + 3 * MINUTE)):
        assert await read_all(store, ids, query) == await read_all(reference, ids, query)
    assert await _instance_numbers(store, ids) == await _instance_numbers(reference, ids)


async def test_a_file_of_schema_7_keeps_its_packs_in_the_rowid_table(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    await _three_writes_in(path)
    with sqlite3.connect(path) as conn:  # the packs as schema 7 kept them
        conn.executescript(
            "ALTER TABLE temporal_packs RENAME TO new_packs;"
            "CREATE TABLE temporal_packs (tenant TEXT NOT NULL, entity_id TEXT NOT NULL,"
            " iid INTEGER NOT NULL, tmin INTEGER NOT NULL, body BLOB NOT NULL,"
            " PRIMARY KEY (tenant, entity_id, iid)) WITHOUT ROWID;"
            "INSERT INTO temporal_packs SELECT tenant, entity_id, iid, tmin, body"
            " FROM new_packs; DROP TABLE new_packs;"
            "UPDATE meta SET value = '7' WHERE key = 'schema_version';")
        packed = conn.execute("SELECT * FROM temporal_packs ORDER BY iid").fetchall()
    assert len(packed) == 3
    async with _with_reference(path) as (store, reference):
        with sqlite3.connect(path) as conn:
            (layout,) = conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'table'"
                                     " AND name = 'temporal_packs'").fetchone()
            assert "WITHOUT ROWID" not in layout.upper()
            assert conn.execute("SELECT tenant, entity_id, iid, tmin, body FROM temporal_packs"
                                " ORDER BY iid").fetchall() == packed
            # schema 12: their signatures unknown (NULL: settled by any read)
            assert conn.execute("SELECT DISTINCT sig FROM temporal_packs").fetchall() == [
                (None,)]
            assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                                ).fetchone() == (str(SCHEMA_VERSION),)
        await _assert_reads_alike(store, reference)


async def test_packs_that_number_each_instance_read_as_those_numbered_by_position(
        tmp_path: Path) -> None:
    # a file written before packs numbered their instances by position held [name,
    # internal form, iid] for each: it reads the same
    def numbered(iid: int, body: bytes) -> list[Any] | None:
        items = _positional(json.loads(body))
        if not all(len(item) == 2 for item in items):
            return None
        return [[*item, iid + position] for position, item in enumerate(items)]

    await _rewritten_packs_read_alike(tmp_path / "b.db", numbered)  # numbered by position


def _positional(body: Any) -> list[Any]:
    """A pack's items as schema 8 wrote them: its entity's document (schema 9) as the
    array of ``[attribute, instance]`` of its instances in order; an array as it is."""
    if isinstance(body, dict):
        return [[name, inst] for name, instances in body["attrs"].items() for inst in instances]
    return list(body)


async def test_packs_of_schema_8_read_as_the_documents_that_replaced_them(
        tmp_path: Path) -> None:
    # schema 8 packed the usual write's instances as [[attribute, instance], ...]; schema
    # 9 stores the entity's document instead: a file of either reads the same
    def arrays(iid: int, body: bytes) -> list[Any] | None:
        return _positional(json.loads(body)) if body.startswith(b"{") else None

    # the usual pack is its entity's document
    await _rewritten_packs_read_alike(tmp_path / "b.db", arrays, schema="8")


async def _rewritten_packs_read_alike(
        path: Path, rewrite: Callable[[int, bytes], list[Any] | None],
        schema: str | None = None) -> None:
    """Three writes in ``path``, each pack's body then replaced by what ``rewrite(iid,
    body)`` gives (None: kept; at least one rewritten), the file marked of ``schema``
    when given: the store reads what the reference store reads."""
    await _three_writes_in(path)
    with sqlite3.connect(path) as conn:
        packed = conn.execute("SELECT rowid, iid, body FROM temporal_packs").fetchall()
        rewritten = [(rowid, rewrite(iid, body)) for rowid, iid, body in packed]
        rewritten = [(rowid, items) for rowid, items in rewritten if items is not None]
        assert rewritten
        for rowid, items in rewritten:
            conn.execute("UPDATE temporal_packs SET body = ? WHERE rowid = ?",
                         (json.dumps(items).encode(), rowid))
        if schema is not None:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (schema,))
    async with _with_reference(path) as (store, reference):
        await _assert_reads_alike(store, reference)


async def _instance_numbers(store: Store, ids: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    found = await history(store).read_history("", ids, None, TemporalQuery())
    return {entity_id: sorted((i.attribute, repr(i.value), instance_number(i.instance_id))
                              for i in instances)
            for entity_id, instances in found.items()}
