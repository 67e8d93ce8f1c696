"""Discovery statistics kept on write (storage/discovery.py) equal those computed from scratch.

After any sequence of writes (single writes, batches naming an id twice,
deletions, type changes, multi-attributes of mixed kinds, failed mutations),
every store's ``type_summaries`` and ``attribute_summaries`` answer what
folding its stored entities answers: the memory store, the SQLite store (the
counters in its ``discovery_stats`` table) and the MongoDB store on the
stand-in (``$inc`` upserts in ``discoveryStats``).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_contract import T, U, V
from test_mongo_store import Server, _store

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query import EntityQuery
from storage import MemoryStore, SqliteStore, Store
from storage.discovery import (
    entity_stats,
    stats_delta,
    summarize_attributes,
    summarize_types,
)
from storage.sqlite import sql

NAMES = [f"https://example.org/{n}" for n in ("a", "b", "c", "d")]
KINDS = ["Property", "Relationship", "GeoProperty", "LanguageProperty", None]

instances = st.lists(st.sampled_from(KINDS), min_size=1, max_size=3).map(
    lambda kinds: [
        {"value": i} if kind is None else {"type": kind, "value": i,
                                           **({"datasetId": f"urn:d:{i}"} if i else {})}
        for i, kind in enumerate(kinds)
    ]
)
entities = st.builds(
    lambda entity_id, types, attrs: {"id": entity_id, "type": types, "attrs": attrs},
    st.sampled_from(["urn:e:1", "urn:e:2", "urn:e:3", "urn:e:4"]),
    st.lists(st.sampled_from([T, U, V]), min_size=1, max_size=2, unique=True),
    st.dictionaries(st.sampled_from(NAMES), instances, max_size=4),
)
#: a write: ("put", entity), ("delete", id), ("fail", id): a mutation that raises
writes = st.one_of(
    st.tuples(st.just("put"), entities),
    st.tuples(st.just("delete"), st.sampled_from(["urn:e:1", "urn:e:2", "urn:e:5"])),
    st.tuples(st.just("fail"), st.sampled_from(["urn:e:1", "urn:e:3"])),
)
#: a step: one write through modify, or several through modify_many
steps = st.one_of(
    writes.map(lambda w: ("one", [w])),
    st.lists(writes, min_size=1, max_size=5).map(lambda ws: ("many", ws)),
)


def _mutation(write: tuple[str, Any]) -> tuple[str, Callable[[Any], Any]]:
    kind, arg = write
    if kind == "put":
        return arg["id"], lambda current: {**arg, "attrs": {**arg["attrs"]}}
    if kind == "delete":
        return arg, lambda current: None

    def refuse(current: Any) -> Any:
        if current is not None:
            current["attrs"].clear()  # a mutation that edits, then refuses: nothing written
        raise BadRequestData("refused")

    return arg, refuse


async def _apply(store: Store, plan: list[tuple[str, list[tuple[str, Any]]]]) -> None:
    for mode, ws in plan:
        if mode == "one":
            entity_id, mutation = _mutation(ws[0])
            with suppress(BadRequestData):
                await store.modify("", entity_id, mutation)
        else:
            await store.modify_many("", [_mutation(w) for w in ws])


async def _check(store: Store) -> None:
    stored, _ = await store.query_entities("", EntityQuery())
    assert await store.type_summaries("") == summarize_types(stored)
    assert await store.attribute_summaries("") == summarize_attributes(stored)
    assert await store.type_summaries("", [U, V]) == summarize_types(stored, [U, V])
    assert await store.attribute_summaries("", NAMES[:2]) == summarize_attributes(
        stored, NAMES[:2])


@asynccontextmanager
async def _memory() -> AsyncIterator[Store]:
    yield MemoryStore()


@asynccontextmanager
async def _sqlite() -> AsyncIterator[Store]:
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory) / "broker.db")
        await store.open()
        try:
            yield store
        finally:
            await store.close()


@asynccontextmanager
async def _mongo() -> AsyncIterator[Store]:
    store = await _store(Server())
    try:
        yield store
    finally:
        await store.close()


FACTORIES = {"memory": _memory, "sqlite": _sqlite, "mongo": _mongo}


@pytest.mark.parametrize("backend", sorted(FACTORIES))
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(steps, max_size=8))
async def test_counters_kept_on_write_equal_a_summary_from_scratch(
    backend: str, plan: list[tuple[str, list[tuple[str, Any]]]]
) -> None:
    async with FACTORIES[backend]() as store:
        await _apply(store, plan)
        await _check(store)


@given(before=entities, after=entities)
def test_a_delta_over_the_changed_names_is_the_whole_delta(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    whole = stats_delta(before, after)
    changed = {n for n in NAMES if before["attrs"].get(n) != after["attrs"].get(n)}
    assert stats_delta(before, after, changed) == whole
    total = entity_stats(before)
    total.update(whole)
    assert {k: n for k, n in total.items() if n} == {
        k: n for k, n in entity_stats(after).items() if n}


async def test_a_file_of_an_older_schema_is_counted_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    store = SqliteStore(path)
    await store.open()
    await _apply(store, [("many", [("put", {"id": "urn:e:1", "type": [T, U], "attrs": {
        NAMES[0]: [{"type": "Property", "value": 1}]}})])])
    stored, _ = await store.query_entities("", EntityQuery())
    await store.close()
    conn = sql.connect(path, readonly=False)
    conn.execute("DELETE FROM discovery_stats")
    conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.close()
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.type_summaries("") == summarize_types(stored)
        assert [s.instance_count for s in await store.attribute_summaries("")] == [1]
    finally:
        await store.close()


async def test_concurrent_writes_of_one_transaction_are_counted_once_each(
    tmp_path: Path,
) -> None:
    """Writes queued together share one SQLite transaction (group commit); their
    counters are summed and written before its COMMIT, without the refused ones."""
    store = SqliteStore(tmp_path / "broker.db")
    await store.open()
    try:
        def put(n: int) -> tuple[str, Callable[[Any], Any]]:
            entity = {"id": f"urn:e:{n % 12}", "type": [T] if n % 3 else [T, U],
                      "attrs": {NAMES[n % 4]: [{"type": "Property", "value": n}]}}
            return entity["id"], lambda current: entity

        async def write(n: int) -> None:
            entity_id, mutation = _mutation(("fail", "urn:e:1")) if n % 5 == 0 else put(n)
            with suppress(BadRequestData):
                await store.modify("", entity_id, mutation)

        await asyncio.gather(*(write(n) for n in range(40)))
        assert store.commit_count < 40  # grouped
        await _check(store)
    finally:
        await store.close()
