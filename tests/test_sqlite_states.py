"""The states the SQLite writer keeps between transactions (storage/sqlite/states.py).

A write of a stored entity takes the state the writer kept for it instead of decoding
its row, while the row holds the bytes kept with it.  The properties: any sequence of
writes (good and bad, single and in batches, rolled back, by another store on the same
file) gives the same Changes, errors, rows and history with the states kept as with
none; every state used is the decode of its row, class for class (the module's check,
on in these tests, raises otherwise); nothing the writes, the subscriptions, the
notifications or the answers do changes a kept state.  The bounds hold.
"""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sqlite_upsert_writer import LOOKALIKES, _history, _tables
from test_storage_query import NS, attributes

from ngsi_ld.attribute_ops import delete_attribute
from ngsi_ld.batch import batch_upsert_mutation
from ngsi_ld.errors import ServiceUnavailable
from ngsi_ld.model import Entity, Mutation
from ngsi_ld.operations import (
    append_attributes,
    create_entity,
    delete_entity,
    merge_entity,
    replace_entity,
    update_attributes,
)
from ngsi_ld.temporal import recorder_at
from storage import SqliteStore
from storage.sqlite import states as states_module
from storage.sqlite import stats
from storage.sqlite.states import States, same_json


@pytest.fixture(autouse=True)
def _checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every state used is compared with the decode of its row (AssertionError if not)."""
    monkeypatch.setattr(states_module, "CHECK", True)
    yield


# -- the kept states themselves -------------------------------------------------------------

def test_a_state_is_used_only_for_the_bytes_kept_with_it() -> None:
    kept = States()
    state: Entity = {"id": "urn:a", "type": ["T"]}
    kept.keep("", "urn:a", state, orjson.dumps(state))
    assert kept.get("", "urn:a", orjson.dumps(state)) is state
    assert kept.get("", "urn:a", orjson.dumps({"id": "urn:a", "type": ["U"]})) is None
    assert kept.get("t1", "urn:a", orjson.dumps(state)) is None  # another tenant's
    kept.drop("", "urn:a")
    assert kept.get("", "urn:a", orjson.dumps(state)) is None
    assert kept.hits == 1 and len(kept) == 0 and kept.size == 0


def test_the_least_recently_used_go_first_within_both_bounds() -> None:
    kept = States(max_entries=3, max_bytes=100)
    docs = {n: orjson.dumps({"id": f"urn:{n}", "v": "x" * 10}) for n in range(5)}
    for n in range(3):
        kept.keep("", f"urn:{n}", orjson.loads(docs[n]), docs[n])
    assert kept.get("", "urn:0", docs[0]) is not None  # urn:0 used: urn:1 is the oldest now
    kept.keep("", "urn:3", orjson.loads(docs[3]), docs[3])
    assert [kept.get("", f"urn:{n}", docs[n]) is not None for n in range(4)] == \
        [True, False, True, True]
    big = orjson.dumps({"id": "urn:4", "v": "x" * 60})  # over the bytes with two others
    kept.keep("", "urn:4", orjson.loads(big), big)
    assert len(kept) <= 3 and kept.size <= 100
    assert kept.get("", "urn:4", big) is not None
    assert kept.size == sum(len(d) for d in (big, docs[3])) or kept.size == len(big)


def test_a_rollback_lets_go_what_its_transaction_kept() -> None:
    kept = States()
    one, two = orjson.dumps({"id": "urn:1"}), orjson.dumps({"id": "urn:2"})
    kept.keep("", "urn:1", orjson.loads(one), one)
    kept.committed(sqlite3.connect(":memory:"))
    kept.keep("", "urn:2", orjson.loads(two), two)
    kept.rolled_back()
    assert kept.get("", "urn:1", one) is not None
    assert kept.get("", "urn:2", two) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=12)


@given(json_values)
def test_a_json_value_is_the_same_json_as_its_decoded_encoding(value: Any) -> None:
    assert same_json(value, orjson.loads(orjson.dumps(value)))


@pytest.mark.parametrize(("a", "b"), [
    (1, True), (1, 1.0), (0, False), ([1], (1,)), ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    ({"a": [1]}, {"a": [True]}), ([{"k": 1}], [{"k": 1.0}]), (None, []), ("1", 1),
    (float("nan"), None),
])
def test_lookalikes_are_not_the_same_json(a: Any, b: Any) -> None:
    assert not same_json(a, b) and not same_json(b, a)


# -- any writes: the same with the states kept as with none ---------------------------------

IDS = ["urn:x:S0", "urn:x:S1", "urn:x:S2"]
NAMES = [NS + a for a in ("a", "b", "c")]
TYPES = st.lists(st.sampled_from([NS + "T", NS + "V"]), min_size=1, max_size=2, unique=True)
#: an attribute written, now and then with values Python finds equal and JSON does not
attribute = attributes() | LOOKALIKES.map(lambda v: [{"type": "Property", "value": v}])


@st.composite
def entity(draw: st.DrawFn, entity_id: str) -> dict[str, Any]:
    out = {"id": entity_id, "type": draw(TYPES),
           "attrs": draw(st.dictionaries(st.sampled_from(NAMES), attribute, max_size=3))}
    if draw(st.integers(0, 4)) == 0:
        out["scope"] = draw(st.sampled_from([["/a"], ["/a", "/b"]]))
    return out


@st.composite
def fragment(draw: st.DrawFn) -> dict[str, Any]:
    attrs = draw(st.dictionaries(st.sampled_from(NAMES), attribute, min_size=1, max_size=2))
    out: dict[str, Any] = {"attrs": attrs}
    if draw(st.integers(0, 4)) == 0:
        out["type"] = draw(TYPES)
    return out


class Raised(Exception):
    """What a failing mutation raises."""


def _raw(doc: dict[str, Any]) -> Mutation:
    """A write of another kind: the entity as given, its current state not read."""
    return lambda current: cast(Entity, copy.deepcopy(doc))


def _in_place(current: Entity | None) -> Entity | None:
    """A write of its own copy of the entity (no KEEPS_CURRENT): changed in place."""
    if current is None:
        return None
    attrs = current.get("attrs")
    if isinstance(attrs, dict):
        attrs.pop(NAMES[0], None)
    current["modifiedAt"] = "2026-12-06T11:00:00.000Z"
    return current


def _failing(current: Entity | None) -> Entity | None:
    raise Raised("refused")


def _mutation(op: tuple[Any, ...], now: str) -> Mutation:
    kind, entity_id, *rest = op
    if kind == "upsert":
        return batch_upsert_mutation(copy.deepcopy(rest[0]), now, rest[1], owned=True)
    if kind == "create":
        return create_entity(copy.deepcopy(rest[0]), now)
    if kind == "replace":
        return replace_entity(entity_id, copy.deepcopy(rest[0]), now)
    if kind == "update":
        return update_attributes(entity_id, copy.deepcopy(rest[0]), now)
    if kind == "append":
        return append_attributes(entity_id, copy.deepcopy(rest[0]), now, no_overwrite=rest[1])
    if kind == "merge":
        return merge_entity(entity_id, copy.deepcopy(rest[0]), now)
    if kind == "delete-attr":
        return delete_attribute(entity_id, rest[0], now, delete_all=rest[1])
    if kind == "delete":
        return delete_entity(entity_id)
    if kind == "raw":
        return _raw(rest[0])
    if kind == "in-place":
        return _in_place
    return _failing


@st.composite
def write(draw: st.DrawFn) -> tuple[Any, ...]:
    """One write of one entity: any operation, good or bad (absent entities, Nulls...)."""
    entity_id = draw(st.sampled_from(IDS))
    kind = draw(st.sampled_from(["upsert", "upsert", "update", "update", "create", "replace",
                                 "append", "merge", "delete-attr", "delete", "raw", "in-place",
                                 "fail"]))
    if kind == "upsert":
        return (kind, entity_id, draw(entity(entity_id)), draw(st.sampled_from(
            ["replace", "update"])))
    if kind in ("create", "replace", "raw"):
        return (kind, entity_id, draw(entity(entity_id)))
    if kind in ("update", "merge"):
        return (kind, entity_id, draw(fragment()))
    if kind == "append":
        return (kind, entity_id, draw(fragment()), draw(st.booleans()))
    if kind == "delete-attr":
        return (kind, entity_id, draw(st.sampled_from(NAMES)), draw(st.booleans()))
    return (kind, entity_id)


#: transactions: a single write (``modify``), several at once (``modify_many``), or
#: several whose COMMIT fails (SQLite: the transaction rolled back whole)
transactions = st.lists(st.one_of(
    st.tuples(st.just("one"), write().map(lambda w: [w])),
    st.tuples(st.just("many"), st.lists(write(), min_size=1, max_size=4)),
    st.tuples(st.just("lost"), st.lists(write(), min_size=1, max_size=3)),
), min_size=1, max_size=8)

#: set while the COMMIT of the transaction under way is to fail
_failing_commit = [False]
_flush = stats.flush


def _flush_or_fail(conn: sqlite3.Connection) -> None:
    """stats.flush, run right before each COMMIT: raises while told to."""
    if _failing_commit[0]:
        raise sqlite3.OperationalError("disk I/O error (a test's)")
    _flush(conn)


@contextmanager
def _commits_may_fail() -> Iterator[None]:
    stats.flush = _flush_or_fail
    try:
        yield
    finally:
        stats.flush = _flush
        _failing_commit[0] = False


def _seen(outcome: Any) -> Any:
    """What a write gave, comparable across stores (the Change's states class for class)."""
    if isinstance(outcome, BaseException):
        return ("error", type(outcome).__name__, str(outcome))
    if outcome is None:
        return ("none",)
    return ("change", outcome.entity_id, orjson.dumps(outcome.before),
            orjson.dumps(outcome.after), repr(outcome.before), repr(outcome.after))


async def _run(store: SqliteStore, plan: list[tuple[str, list[tuple[Any, ...]]]],
               other: SqliteStore | None = None) -> list[Any]:
    seen: list[Any] = []
    kept: list[tuple[Any, bytes]] = []  # every Change's states and their encoding then
    for number, (how, writes) in enumerate(plan):
        now = f"2026-12-06T10:00:{number:02d}.000Z"
        record = recorder_at(now)
        if other is not None and number % 3 == 2:  # another process writes the first id
            await other.modify("", IDS[0], _raw({"id": IDS[0], "type": [NS + "T"],
                                                 "attrs": {}, "modifiedAt": now}))
        rows = _docs(store.path)
        got: list[Any]
        if how == "one":
            try:
                got = [await store.modify("", writes[0][1], _mutation(writes[0], now),
                                          record=record)]
            except Exception as exc:
                got = [exc]
        else:
            _failing_commit[0] = how == "lost"
            try:
                outcomes = await store.modify_many(
                    "", [(w[1], _mutation(w, now)) for w in writes], record=record)
                got = [o.error if o.error is not None else o.change for o in outcomes]
            except Exception as exc:
                got = [exc]
            finally:
                _failing_commit[0] = False
        # each Change's before is the row as it was, or what the write before it wrote
        expected = rows if how != "lost" else {}
        for w, outcome in zip(writes, got, strict=False):  # a lost batch: one error
            if not isinstance(outcome, BaseException) and outcome is not None:
                assert orjson.dumps(outcome.before) == expected.pop(w[1], b"null")
                expected[w[1]] = orjson.dumps(outcome.after)
        for outcome in got:
            seen.append(_seen(outcome))
            if not isinstance(outcome, BaseException) and outcome is not None:
                for state in (outcome.before, outcome.after):
                    if state is not None:
                        kept.append((state, orjson.dumps(state)))
    # nothing changed a state handed out, kept or not
    for state, encoded in kept:
        assert same_json(state, orjson.loads(encoded))
    return seen


def _docs(path: Path) -> dict[str, bytes]:
    """The stored document of each entity of the default tenant."""
    conn = sqlite3.connect(path)
    try:
        return {i: bytes(d) for i, d in
                conn.execute("SELECT id, doc FROM entities WHERE tenant = ''")}
    finally:
        conn.close()


def _rows(path: Path) -> dict[str, list[Any]]:
    return {**_tables(path), **_history(path)}


def _kept_match_their_rows(store: SqliteStore, path: Path, alone: bool) -> None:
    """Every kept state is its bytes decoded; and, with no other writer on the file
    (``alone``), the bytes its row holds."""
    conn = sqlite3.connect(path)
    try:
        rows = dict(((t, i), bytes(d)) for t, i, d in
                    conn.execute("SELECT tenant, id, doc FROM entities"))
    finally:
        conn.close()
    for key, (stored, state) in store.states._entries.items():
        assert rows.get(key) == stored or not alone
        assert same_json(state, orjson.loads(stored))


async def _both(plan: list[tuple[str, list[tuple[Any, ...]]]], shared: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, _commits_may_fail():
        runs = []
        for name, keep in (("kept.db", True), ("none.db", False)):
            path = Path(tmp) / name
            store = SqliteStore(path)
            if not keep:
                store.states.max_entries = 0  # each state let go as soon as kept
            other = SqliteStore(path) if shared else None
            await store.open()
            if other is not None:
                await other.open()
            try:
                seen = await _run(store, plan, other)
                if keep:
                    _kept_match_their_rows(store, path, alone=not shared)
                else:
                    assert store.states.hits == 0
            finally:
                if other is not None:
                    await other.close()
                await store.close()
            runs.append((seen, _rows(path)))
        assert runs[0][0] == runs[1][0]  # the Changes and errors
        assert runs[0][1] == runs[1][1]  # the rows and the history


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transactions)
def test_writes_give_the_same_with_the_states_kept_as_without(
        plan: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    asyncio.run(_both(plan, shared=False))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transactions)
def test_another_store_writing_the_same_file_is_seen(
        plan: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    asyncio.run(_both(plan, shared=True))


# -- the states are used, and only while valid ----------------------------------------------

@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    backend = SqliteStore(tmp_path / "states.db")
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


def _patch(value: Any, now: str) -> Mutation:
    return update_attributes(IDS[0], {"attrs": {NAMES[0]: [{"type": "Property",
                                                            "value": value}]}}, now)


async def test_an_update_takes_the_state_the_last_update_kept(store: SqliteStore) -> None:
    await store.modify("", IDS[0], create_entity(
        {"id": IDS[0], "type": [NS + "T"], "attrs": {}}, "2026-12-06T10:00:00.000Z"))
    first = await store.modify("", IDS[0], _patch(1, "2026-12-06T10:00:01.000Z"))
    assert store.states.hits == 0  # a creation is not kept: decoded
    second = await store.modify("", IDS[0], _patch(2, "2026-12-06T10:00:02.000Z"))
    assert store.states.hits == 1
    assert second.before is first.after  # the very state, not a decode of it
    await store.modify("", IDS[0], delete_entity(IDS[0]))
    assert len(store.states) == 0


async def test_a_row_written_behind_the_writer_is_decoded(store: SqliteStore,
                                                          tmp_path: Path) -> None:
    await store.modify("", IDS[0], create_entity(
        {"id": IDS[0], "type": [NS + "T"], "attrs": {}}, "2026-12-06T10:00:00.000Z"))
    await store.modify("", IDS[0], _patch(1, "2026-12-06T10:00:01.000Z"))
    behind = {"id": IDS[0], "type": [NS + "V"], "attrs": {}}
    conn = sqlite3.connect(tmp_path / "states.db")
    with conn:
        conn.execute("UPDATE entities SET doc = ? WHERE id = ?", (orjson.dumps(behind), IDS[0]))
    conn.close()
    change = await store.modify("", IDS[0], _patch(2, "2026-12-06T10:00:02.000Z"))
    assert store.states.hits == 0 and change.before == behind


async def test_a_transaction_rolled_back_keeps_nothing(store: SqliteStore) -> None:
    await store.modify("", IDS[0], create_entity(
        {"id": IDS[0], "type": [NS + "T"], "attrs": {}}, "2026-12-06T10:00:00.000Z"))
    kept = await store.modify("", IDS[0], _patch(1, "2026-12-06T10:00:01.000Z"))
    assert len(store.states) == 1
    with _commits_may_fail():
        _failing_commit[0] = True
        with pytest.raises(ServiceUnavailable):
            await store.modify("", IDS[0], _patch(2, "2026-12-06T10:00:02.000Z"))
    assert len(store.states) == 0  # what the transaction kept is let go with it
    change = await store.modify("", IDS[0], _patch(3, "2026-12-06T10:00:03.000Z"))
    assert same_json(change.before, kept.after)
