"""A batch upsert of existing entities on the SQLite writer: its shortcuts change nothing.

The writer compares every attribute of a replaced entity twice (the stamps its
instances keep, ``ngsi_ld.operations.stamp_entity``; then, in one walk,
``storage.sqlite.attribute_walk.walk``, the attributes whose index rows may change and
the instances its history records), with a shortcut for the usual attribute of one
instance.  The properties: the shortcuts answer what the general comparison answers,
the one walk what the separate functions (``changed_names``,
``ngsi_ld.temporal.history.attribute_changes``) answer, any sequence of upserts leaves
the tables a fresh store of the final entities holds, and the tables, the history and
the Changes (before and after) the separate functions would have given, and that its
instances numbered one by one (their pack encoded later) would have given.  A replaced
entity stamped and walked in one pass (``replace_walk``) gives what the mutation then
the walk give, and the least time it tells its pack is what the pack's check gives.
"""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_storage_query import NS, attributes, entities, scalars

from ngsi_ld.batch import batch_upsert_mutation
from ngsi_ld.instances import MAIN_MEMBER
from ngsi_ld.operations import replaced_entity, stamp_entity
from ngsi_ld.temporal import history as temporal_history
from ngsi_ld.temporal import recorder_at
from storage import Outcome, SqliteStore
from storage.sqlite import attribute_walk, history_rows, history_sql, writes
from storage.sqlite import index as sqlite_index

NAMES = [NS + a for a in ("a", "b", "c")]
IDS = ["urn:x:U0", "urn:x:U1", "urn:x:U2"]
KINDS = ["Property", "Relationship", "GeoProperty", "VocabProperty", "LanguageProperty"]
#: values that Python finds equal and JSON does not (1 == True == 1.0)
LOOKALIKES = st.sampled_from([1, True, 1.0, 0, False, "1", None, [1], [True],
                              {"k": 1}, {"k": True}, {"k": 1.0}])


@st.composite
def odd_instance(draw: st.DrawFn) -> Any:
    """An instance that may differ from another only where the shortcut looks: its
    kind, its value, its main member, stamps; now and then not a JSON object."""
    if draw(st.integers(0, 20)) == 0:
        return draw(LOOKALIKES)
    inst: dict[str, Any] = {"type": draw(st.sampled_from(KINDS))}
    members = draw(st.lists(st.sampled_from(["object", "vocab", "languageMap"]), max_size=1))
    if draw(st.integers(0, 3)):  # most instances have a value
        members.append("value")
    for member in members:
        inst[member] = draw(LOOKALIKES | scalars)
    if draw(st.booleans()):
        inst["modifiedAt"] = draw(st.sampled_from(["2026-01-01T00:00:00Z",
                                                   "2026-01-02T00:00:00Z"]))
    return inst


one_or_more = st.one_of(
    st.lists(odd_instance(), min_size=1, max_size=1),
    st.lists(odd_instance(), max_size=2),
    odd_instance(),  # not a list: an attribute of a malformed document
    attributes(),
)


def _general(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """changed_names without a shortcut: each attribute's instances compared one by one."""
    old, new = before["attrs"], after["attrs"]
    changed = set(old.keys() ^ new.keys())
    for name, a in old.items():
        b = new.get(name, a)
        a, b = (a if isinstance(a, list) else [a]), (b if isinstance(b, list) else [b])
        if len(a) != len(b) or not all(map(attribute_walk.same_indexed, a, b)):
            changed.add(name)
    return changed


def _twins(value: Any) -> list[Any]:
    """Values equal to ``value`` in Python and not in JSON (True for 1, [1.0] for [1])."""
    if value.__class__ in (bool, int, float):
        return [v for v in (True, 1, 1.0, False, 0, 0.0) if v == value
                and v.__class__ is not value.__class__]
    if isinstance(value, list):
        return [[*value[:n], twin, *value[n + 1:]] for n, item in enumerate(value)
                for twin in _twins(item)]
    if isinstance(value, dict):
        return [{**value, key: twin} for key, item in value.items() for twin in _twins(item)]
    return []


@st.composite
def rewritten(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attributes before and after a write: each attribute kept, rewritten with one member
    changed (often to a lookalike), replaced by another, or dropped; new ones added."""
    old = draw(st.dictionaries(st.sampled_from(NAMES), one_or_more, max_size=3))
    new: dict[str, Any] = {}
    for name, instances in old.items():
        fate = draw(st.sampled_from(["keep", "tweak", "tweak", "replace", "drop"]))
        if fate == "keep":
            new[name] = copy.deepcopy(instances)
        elif fate == "tweak" and isinstance(instances, list) and instances \
                and isinstance(instances[0], dict):
            first = {**instances[0], "modifiedAt": "2026-12-05T10:00:00Z"}
            member = draw(st.sampled_from(["type", "value", "value", "value", "object", "vocab",
                                           "languageMap", "modifiedAt"]))
            twins = _twins(first.get(member))
            first[member] = draw(st.sampled_from(KINDS) if member == "type"
                                 else st.sampled_from(twins) if twins else LOOKALIKES)
            new[name] = [first, *copy.deepcopy(instances[1:])]
        elif fate != "drop":
            new[name] = draw(one_or_more)
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=2)):
        new.setdefault(name, draw(one_or_more))
    return old, new


def _pair(kind: str, member: str, old: Any, new: Any) -> tuple[Any, Any]:
    return ({NAMES[0]: [{"type": kind, member: old}]},
            {NAMES[0]: [{"type": kind, member: new, "modifiedAt": "2026-12-05T10:00:00Z"}]})


@settings(max_examples=500, deadline=None)
@given(rewritten())
@example(_pair("Property", "value", [1], [True]))
@example(_pair("Property", "value", {"k": 1}, {"k": 1.0}))
@example(_pair("Relationship", "object", ["urn:a", 1], ["urn:a", True]))
@example(_pair("Property", "value", "x", "x"))
def test_changed_names_is_the_general_comparison(write: tuple[Any, Any]) -> None:
    old, new = write
    before, after = {"attrs": old}, {"attrs": new}
    assert sqlite_index.changed_names(before, after) == _general(before, after)
    # what the index keeps of the attributes not named is the same before and after
    kept = set(old) - sqlite_index.changed_names(before, after)
    assert sqlite_index.value_rows(before, kept) == sqlite_index.value_rows(after, kept)
    assert sqlite_index.geo_boxes(before, kept) == sqlite_index.geo_boxes(after, kept)


def _general_changes(before: dict[str, Any], after: dict[str, Any]) -> list[Any]:
    """attribute_changes without a shortcut: every instance compared with the one of its
    name and datasetId (the last of a datasetId counts), those gone deleted."""
    def by_dataset(instances: Any) -> dict[Any, Any]:
        if not isinstance(instances, list):
            return {}
        return {i.get("datasetId"): i for i in instances if isinstance(i, dict)}

    old, new = before["attrs"], after["attrs"]
    changes = []
    for name, instances in new.items():
        was, now = by_dataset(old.get(name)), by_dataset(instances)
        changes.extend((name, inst, False) for key, inst in now.items() if was.get(key) != inst)
        changes.extend((name, inst, True) for key, inst in was.items() if key not in now)
    for name, instances in old.items():
        if name not in new:
            changes.extend((name, inst, True) for inst in by_dataset(instances).values())
    return changes


def _general_history(before: Any, after: Any) -> Any:
    return iter(_general_changes(before or {"attrs": {}}, after or {"attrs": {}}))


@settings(max_examples=500, deadline=None)
@given(rewritten())
@example(({NAMES[0]: [{"type": "Property", "value": 1, "modifiedAt": "2026-01-01T00:00:00Z"}]},
          {NAMES[0]: [{"type": "Property", "value": 2, "modifiedAt": "2026-01-01T00:00:00Z"}]}))
@example(({NAMES[0]: [{"type": "Property", "value": 1, "modifiedAt": "2026-01-01T00:00:00Z"}]},
          {NAMES[0]: [{"type": "Property", "value": 1, "modifiedAt": "2026-01-02T00:00:00Z"}]}))
@example(({NAMES[0]: [{"type": "Property", "value": 1}]},
          {NAMES[0]: [{"type": "Property", "value": 1, "datasetId": None}]}))
@example(({NAMES[0]: [{"type": "Property", "value": 1, "datasetId": "urn:ds:1"}]},
          {NAMES[0]: [{"type": "Property", "value": 1}]}))
def test_attribute_changes_are_the_general_comparison(write: tuple[Any, Any]) -> None:
    old, new = write
    before, after = {"attrs": old}, {"attrs": new}
    assert list(temporal_history.attribute_changes(before, after)) == \
        _general_changes(before, after)


DATASETS = st.sampled_from([None, "urn:ds:1", "urn:ds:2"])


@st.composite
def stamped_attribute(draw: st.DrawFn, stamp: str) -> list[dict[str, Any]]:
    out = []
    for dataset_id in draw(st.lists(DATASETS, max_size=2, unique=True)):
        inst: dict[str, Any] = {"type": "Property", "value": draw(scalars)}
        if dataset_id is not None:
            inst["datasetId"] = dataset_id
        if stamp:
            inst["createdAt"] = inst["modifiedAt"] = stamp
        out.append(inst)
    return out


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), stamped_attribute("2026-01-01T00:00:00Z")),
       st.dictionaries(st.sampled_from(NAMES), stamped_attribute("")))
def test_replaced_instances_keep_the_creation_of_their_name_and_dataset(
        old: dict[str, Any], new: dict[str, Any]) -> None:
    now = "2026-12-05T10:00:00Z"
    before = {"id": IDS[0], "type": [NS + "T"], "createdAt": "2025-01-01T00:00:00Z",
              "attrs": old}
    fragment = {"id": IDS[0], "type": [NS + "T"], "attrs": new}
    for owned in (False, True):
        stamped = stamp_entity(copy.deepcopy(fragment), now, before, owned=owned)
        assert stamped["createdAt"] == "2025-01-01T00:00:00Z"
        for name, instances in stamped["attrs"].items():
            for inst in instances:
                existed = any(i.get("datasetId") == inst.get("datasetId")
                              for i in old.get(name, []))
                assert inst["createdAt"] == ("2026-01-01T00:00:00Z" if existed else now)
                assert inst["modifiedAt"] == now


# -- the writer: a sequence of upserts, or the final entities stored at once --------------
@st.composite
def upserts(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Batches of whole entities (a few ids written again and again)."""
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        batch = []
        for entity_id in draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=3)):
            batch.append({
                "id": entity_id,
                "type": draw(st.lists(st.sampled_from([NS + "T", NS + "V"]), min_size=1,
                                      max_size=2, unique=True)),
                "attrs": draw(st.dictionaries(st.sampled_from(NAMES), attributes(),
                                              max_size=3)),
            })
        batches.append(batch)
    return batches


def _tables(path: Path) -> dict[str, list[Any]]:
    conn = sqlite3.connect(path)
    try:
        return {
            "entities": conn.execute(
                "SELECT tenant, id, doc, created_at, modified_at, expires_at FROM entities"
                " ORDER BY 1, 2").fetchall(),
            "types": conn.execute(
                "SELECT n.tenant, n.name, t.id FROM entity_types t JOIN names n"
                " ON n.nid = t.type ORDER BY 1, 2, 3").fetchall(),
            "values": conn.execute(
                "SELECT n.tenant, n.name, v.id, v.val, v.vocab FROM attr_values v"
                " JOIN names n ON n.nid = v.attr ORDER BY 1, 2, 3, 4, 5").fetchall(),
            "boxes": conn.execute(
                "SELECT g.tenant, g.id, g.attr, r.minx, r.maxx, r.miny, r.maxy"
                " FROM geo_rows g JOIN geo_rtree r ON r.id = g.rid"
                " ORDER BY 1, 2, 3, 4, 5, 6, 7").fetchall(),
            "stats": conn.execute(
                "SELECT * FROM discovery_stats WHERE n != 0 ORDER BY 1, 2, 3, 4").fetchall(),
        }
    finally:
        conn.close()


def _history(path: Path, *, positional: bool = False) -> dict[str, list[Any]]:
    """The history's tables; ``positional``: each pack's body as the instances it holds
    in order (``[attribute, instance]``, numbered by position), whichever form it took
    (an entity's document, schema 9, or an array)."""
    conn = sqlite3.connect(path)
    try:
        found = {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
                 for table in ("temporal_entities", "temporal_series", "temporal_instances",
                               "temporal_packs")}
    finally:
        conn.close()
    if positional:
        found["temporal_packs"] = [(*row[:5], _instances(orjson.loads(row[5])))
                                   for row in found["temporal_packs"]]
    return found


def _instances(body: Any) -> Any:
    if isinstance(body, dict):  # an entity's document: its instances in order
        return [[name, inst] for name, instances in body["attrs"].items() for inst in instances]
    return body


async def upsert_batches(store: SqliteStore,
                         batches: list[list[dict[str, Any]]]) -> list[list[Outcome]]:
    """Each batch upserted through ``store`` as the batch operation does, a second apart;
    the outcomes of each."""
    done = []
    for number, batch in enumerate(batches):
        now = f"2026-12-05T10:00:0{number}Z"
        done.append(await store.modify_many(
            "", [(e["id"], batch_upsert_mutation(copy.deepcopy(e), now, owned=True))
                 for e in batch], record=recorder_at(now)))
    return done


async def _store(path: Path, batches: list[list[dict[str, Any]]]) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        for outcomes in await upsert_batches(store, batches):
            assert all(o.error is None for o in outcomes)
    finally:
        await store.close()


async def _final(path: Path, entities: list[dict[str, Any]]) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        outcomes = await store.modify_many(
            "", [(e["id"], lambda _, e=e: copy.deepcopy(e)) for e in entities])
        assert all(o.error is None for o in outcomes)
    finally:
        await store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upserts())
def test_upserts_leave_the_tables_of_their_final_entities(
        batches: list[list[dict[str, Any]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        written, fresh = Path(tmp) / "upserts.db", Path(tmp) / "fresh.db"
        asyncio.run(_store(written, batches))
        conn = sqlite3.connect(written)
        final = [orjson.loads(doc) for (doc,) in
                 conn.execute("SELECT doc FROM entities ORDER BY id").fetchall()]
        conn.close()
        asyncio.run(_final(fresh, final))
        assert _tables(written) == _tables(fresh)


def _twice(first: Any, second: Any) -> list[list[dict[str, Any]]]:
    """One batch writing an entity twice (the same stamps), ``first`` then ``second``."""
    return [[{"id": IDS[0], "type": [NS + "T"],
              "attrs": {NAMES[0]: [{"type": "Property", "value": value}]}}
             for value in (first, second)]]


@contextmanager
def _walk_replaced(walk: Callable[[Any, Any], tuple[set[str], list[Any]]]) -> Iterator[None]:
    """The writer's one walk replaced by ``walk`` (what a property compares it with)."""
    shortcut = writes.walk
    writes.walk = walk  # type: ignore[assignment]
    try:
        with _unfused():  # a replacement walked by ``walk`` too
            yield
    finally:
        writes.walk = shortcut


@contextmanager
def _unfused() -> Iterator[None]:
    """The writer without its one pass over a replacement (``replace_walk``): the
    mutation called, then the walk, as for any other write."""
    method = writes.REPLACEMENT
    writes.REPLACEMENT = "no such method"
    try:
        yield
    finally:
        writes.REPLACEMENT = method


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upserts())
@example(_twice(1, 2))
@example(_twice(1, True))
def test_upserts_record_the_history_of_the_general_comparison(
        batches: list[list[dict[str, Any]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        written, general = Path(tmp) / "upserts.db", Path(tmp) / "general.db"
        asyncio.run(_store(written, batches))
        with _walk_replaced(lambda b, a: (
                sqlite_index.changed_names(b, a), list(_general_history(b, a)))):
            asyncio.run(_store(general, batches))
        assert _history(written) == _history(general)


# -- the one walk against the separate functions -------------------------------------------
def _separate(before: Any, after: Any) -> tuple[set[str], list[Any]]:
    """What the writer asked in two walks before: the index decision, the history."""
    return (sqlite_index.changed_names(before, after),
            list(temporal_history.attribute_changes(before, after)))


@settings(max_examples=500, deadline=None)
@given(rewritten(), st.sampled_from(["both", "no before", "no after", "shared"]))
@example(({}, {NAMES[0]: [{"type": "Property", "value": 1}]}), "both")
@example(({NAMES[0]: [{"type": "Property", "value": 1}]}, {}), "both")
@example(({NAMES[0]: [{"type": "Property", "value": 1, "datasetId": "urn:ds:1"}]},
          {NAMES[0]: [{"type": "Property", "value": 1}]}), "both")
@example(({NAMES[0]: None}, {NAMES[0]: None, NAMES[1]: None}), "both")
def test_the_walk_is_the_separate_functions(write: tuple[Any, Any], case: str) -> None:
    old, new = write
    if case == "shared":  # attributes the write did not touch are the same objects
        new = {name: old.get(name, instances) if n % 2 else instances
               for n, (name, instances) in enumerate(new.items())}
    before = None if case == "no before" else {"id": IDS[0], "attrs": old}
    after = None if case == "no after" else {"id": IDS[0], "attrs": new}
    names, changes = attribute_walk.walk(before, after)
    assert (names, changes) == _separate(before, after)
    assert names == _general(before or {"attrs": {}}, after or {"attrs": {}})
    assert changes == _general_changes(before or {"attrs": {}}, after or {"attrs": {}})


@settings(max_examples=200, deadline=None)
@given(entities(), entities(), st.sampled_from([None, "urn:ds:1"]))
def test_the_walk_of_a_replacement_is_the_separate_functions(
        stored: list[dict[str, Any]], fragments: list[dict[str, Any]],
        dataset_id: str | None) -> None:
    now = "2026-12-05T10:00:00Z"
    states = {e["id"]: stamp_entity(e, "2026-01-01T00:00:00Z") for e in stored}
    for fragment in fragments:
        if dataset_id is not None:  # an instance of another datasetId than the stored one
            for instances in fragment["attrs"].values():
                instances[0]["datasetId"] = dataset_id
        before = states.get(fragment["id"])
        after = batch_upsert_mutation(copy.deepcopy(fragment), now)(copy.deepcopy(before))
        assert attribute_walk.walk(before, after) == _separate(before, after)
        assert attribute_walk.walk(after, None) == _separate(after, None)


async def _store_changes(path: Path, batches: list[list[dict[str, Any]]]) -> list[Any]:
    """:func:`_store`, the Changes of the writes (before, after) returned."""
    store = SqliteStore(path)
    await store.open()
    changes = []
    try:
        for number, batch in enumerate(batches):
            now = f"2026-12-05T10:00:0{number}Z"
            outcomes = await store.modify_many(
                "", [(e["id"], batch_upsert_mutation(copy.deepcopy(e), now, owned=True))
                     for e in batch], record=recorder_at(now))
            changes.extend((o.change.before, o.change.after) for o in outcomes
                           if o.change is not None)
    finally:
        await store.close()
    return changes


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upserts())
@example(_twice(1, 2))
@example(_twice(1, True))
def test_upserts_through_the_walk_write_what_the_separate_functions_wrote(
        batches: list[list[dict[str, Any]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        walked, separate = Path(tmp) / "walked.db", Path(tmp) / "separate.db"
        changes = asyncio.run(_store_changes(walked, batches))
        with _walk_replaced(_separate):
            assert asyncio.run(_store_changes(separate, batches)) == changes
        assert _tables(walked) == _tables(separate)
        assert _history(walked) == _history(separate)


def _numbered_one_by_one(before: Any, after: Any, now: str, iids: Any, changes: Any = None,
                         block: Any = None, least: Any = None, doc: Any = None) -> Any:
    """``history_rows.encode_write`` without ``block``: every instance numbered, its pack
    encoded when the batch's histories are recorded (the writer before the ready pack)."""
    return history_rows.encode_write(before, after, now, iids, changes)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upserts())
@example(_twice(1, 2))
def test_upserts_with_their_packs_ready_write_what_the_numbered_instances_wrote(
        batches: list[list[dict[str, Any]]]) -> None:
    """The writer encodes a replaced entity's pack as it walks it (``block``): the
    same tables, history and Changes as its instances numbered one by one."""
    with tempfile.TemporaryDirectory() as tmp:
        ready, numbered = Path(tmp) / "ready.db", Path(tmp) / "numbered.db"
        changes = asyncio.run(_store_changes(ready, batches))
        writes.encode_write = _numbered_one_by_one  # type: ignore[assignment]
        try:
            assert asyncio.run(_store_changes(numbered, batches)) == changes
        finally:
            writes.encode_write = history_rows.encode_write
        assert _tables(ready) == _tables(numbered)
        # the same instances; the ready pack of a whole replacement is its document
        assert _history(ready, positional=True) == _history(numbered, positional=True)


# -- a replacement stamped and walked in one pass ------------------------------------------
def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # what either way raises: the same class and message
        return type(exc), str(exc)


def _usual_replacement(entity_id: str, new: Any, now: str, old: Any) -> Any:
    after = replaced_entity(entity_id, new, now, old, owned=True)
    return (after, *attribute_walk.walk(old, after))


def _least(changes: list[Any]) -> Any:
    """What the pack's check of ``changes`` gives: the least ``t``, or what it raises."""
    if any(deleted for _, _, deleted in changes):
        return "a deletion"
    return _outcome(lambda: history_sql.least_checked([(n, i) for n, i, _ in changes]))


STAMP = st.sampled_from(["2026-12-05T10:00:00Z", "2026-01-01T00:00:00Z"])


@st.composite
def replacements(draw: st.DrawFn) -> tuple[Any, Any, str]:
    """A stored entity and a fragment replacing it: odd attributes (not lists, not
    objects, sub-attributes, stamps sent), now and then stamped as written at ``now``."""
    old, new = draw(rewritten())
    now = draw(STAMP)
    for instances in old.values():
        for inst in instances if isinstance(instances, list) else []:
            if isinstance(inst, dict) and draw(st.booleans()):
                inst["createdAt"] = inst["modifiedAt"] = draw(STAMP)
                if draw(st.integers(0, 8)) == 0:  # a createdAt the history refuses
                    inst["createdAt"] = draw(st.sampled_from(["not a time", 1]))
            if isinstance(inst, dict) and draw(st.integers(0, 5)) == 0:
                inst["sub"] = {NAMES[2]: {"type": "Property", "value": 1}}
            if isinstance(inst, dict) and (dataset_id := draw(DATASETS)) is not None:
                inst["datasetId"] = dataset_id
    for instances in new.values():
        for inst in instances if isinstance(instances, list) else []:
            if isinstance(inst, dict):
                inst.pop("modifiedAt", None)
                if (dataset_id := draw(DATASETS)) is not None:
                    inst["datasetId"] = dataset_id
                if draw(st.integers(0, 5)) == 0:
                    inst["sub"] = draw(st.sampled_from(
                        [{NAMES[2]: {"type": "Property", "value": 1}}, {NAMES[2]: 1}]))
                if draw(st.integers(0, 8)) == 0:
                    inst[draw(st.sampled_from(["createdAt", "modifiedAt"]))] = now
                if draw(st.integers(0, 6)) == 0:  # other times, kept or refused
                    inst[draw(st.sampled_from(["observedAt", "deletedAt"]))] = draw(
                        st.sampled_from([now, "2026-01-01T00:00:00Z", "not a time"]))
                if draw(st.integers(0, 10)) == 0:  # a kind the history refuses
                    inst["type"] = draw(st.sampled_from(["NoSuchKind", 1]))
    before = {"id": IDS[0], "type": [NS + "T"], "createdAt": "2025-01-01T00:00:00Z",
              "modifiedAt": "2025-01-02T00:00:00Z",
              "attrs": draw(st.sampled_from([old, old, old, {}, None, [1]]))}
    for key in draw(st.lists(st.sampled_from(["type", "createdAt"]), unique=True, max_size=2)):
        del before[key]  # now and then an entity stored without its types or createdAt
    fragment: dict[str, Any] = {"attrs": draw(st.sampled_from([new, new, new, {}, [1]]))}
    if draw(st.booleans()):
        fragment = {"id": IDS[0], "type": [NS + "V"], **fragment}
    # the entity's own members: its types absent or empty, a scope, stamps sent, in any
    # order of keys (the stored bytes keep the order the usual stamping gives)
    extra = draw(st.dictionaries(st.sampled_from(["type", "scope", "createdAt",
                                                  "modifiedAt", "id"]),
                                 st.sampled_from([[], [NS + "W"], "/a", now, IDS[0]]),
                                 max_size=3))
    fragment.update(extra)
    if draw(st.booleans()):
        keys = draw(st.permutations(list(fragment)))
        fragment = {key: fragment[key] for key in keys}
    return before, fragment, now


@settings(max_examples=1000, deadline=None)
@given(replacements())
@example(({"attrs": {NAMES[0]: [{"type": "Property", "value": 1, "createdAt": "c",
                                  "modifiedAt": "2026-12-05T10:00:00Z"}]}},
          {"attrs": {NAMES[0]: [{"type": "Property", "value": 1}]}}, "2026-12-05T10:00:00Z"))
@example(({"attrs": {NAMES[0]: [1]}},
          {"attrs": {NAMES[0]: [{"type": "Property", "value": 1}]}}, "2026-12-05T10:00:00Z"))
@example(({"attrs": {NAMES[0]: [{"type": "Property", "value": 1}]}},
          {"attrs": {NAMES[0]: [{"type": "Property", "value": True}],
                     NAMES[1]: [{"type": "Property", "value": 1, "sub": {NAMES[2]: 1}}]}},
          "2026-12-05T10:00:00Z"))
def test_a_replacement_in_one_pass_is_the_mutation_then_the_walk(
        write: tuple[Any, Any, str]) -> None:
    _one_pass_is_the_mutation_then_the_walk(*write)


@st.composite
def usual_replacements(draw: st.DrawFn) -> tuple[Any, Any, str]:
    """A stored entity of usual attributes (one stamped instance each) and a fragment
    replacing them by one instance each: now and then of another kind or datasetId,
    without its main member, with a sub-attribute, with a time of its own or refused
    (what the pack's check looks at)."""
    now = draw(STAMP)
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(NAMES), min_size=1, unique=True)):
        kind = draw(st.sampled_from(KINDS))
        value = draw(LOOKALIKES | scalars)
        x = {"type": kind, MAIN_MEMBER[kind]: value, "createdAt": draw(
            STAMP | st.sampled_from(["not a time", 1])), "modifiedAt": draw(STAMP)}
        y = {"type": kind, MAIN_MEMBER[kind]: draw(st.just(value) | LOOKALIKES)}
        odd = draw(st.sampled_from(["", "", "", "", "type", "main", "time", "sub",
                                    "dataset"]))
        if odd == "type":
            y["type"] = draw(st.sampled_from([*KINDS, "NoSuchKind", 1]))
        elif odd == "main":
            del y[MAIN_MEMBER[kind]]
        elif odd == "time":
            y[draw(st.sampled_from(["observedAt", "deletedAt"]))] = draw(
                st.sampled_from([now, "2026-01-01T00:00:00Z", "not a time"]))
        elif odd == "sub":
            y["sub"] = {NAMES[2]: {"type": "Property", "value": draw(LOOKALIKES)}}
        elif odd == "dataset":
            y["datasetId"] = "urn:ds:1"
        old[name], new[name] = [x], [y]
    before = {"id": IDS[0], "type": [NS + "T"], "createdAt": "2025-01-01T00:00:00Z",
              "modifiedAt": "2025-01-02T00:00:00Z", "attrs": old}
    return before, {"attrs": new}, now


@settings(max_examples=500, deadline=None)
@given(usual_replacements())
def test_a_usual_replacement_in_one_pass_is_the_mutation_then_the_walk(
        write: tuple[Any, Any, str]) -> None:
    _one_pass_is_the_mutation_then_the_walk(*write)


def _one_pass_is_the_mutation_then_the_walk(before: Any, fragment: Any, now: str) -> None:
    """``replace_walk`` gives what the mutation then the walk give (or raises alike),
    and the least time it tells is what the pack's check of its changes gives."""
    fused_new, usual_new = copy.deepcopy(fragment), copy.deepcopy(fragment)
    fused = _outcome(lambda: attribute_walk.replace_walk(IDS[0], fused_new, now,
                                                         copy.deepcopy(before)))
    usual = _outcome(lambda: _usual_replacement(IDS[0], usual_new, now, copy.deepcopy(before)))
    if isinstance(fused, tuple) and isinstance(fused[0], dict):
        *fused, least = fused
        assert tuple(fused) == usual
        assert orjson.dumps(fused[0]) == orjson.dumps(usual[0])  # the same bytes stored
        # the least t it tells is what the pack's check of the changes gives (never
        # told where that check would refuse one, or for no change)
        assert least is None or least == _least(usual[2])
    else:
        assert fused == usual
    assert fused_new == usual_new  # the owned fragment stamped alike, even when refused


def test_a_usual_replacement_tells_the_least_time_of_its_pack() -> None:
    """Every attribute usual (one instance before and after, one a sub-attribute): the
    pack's check is told, not made again."""
    old = {"type": "Property", "value": 1, "createdAt": "2026-01-01T00:00:00Z",
           "modifiedAt": "2026-01-01T00:00:00Z"}
    before = {"id": IDS[0], "type": [NS + "T"], "createdAt": "2026-01-01T00:00:00Z",
              "modifiedAt": "2026-01-01T00:00:00Z",
              "attrs": {NAMES[0]: [old], NAMES[1]: [{**old, "sub": {NAMES[2]: {**old}}}]}}
    fragment = {"attrs": {NAMES[0]: [{"type": "Property", "value": 2}],
                          NAMES[1]: [{"type": "Property", "value": 1,
                                      "sub": {NAMES[2]: {"type": "Property", "value": 1}}}]}}
    now = "2026-12-05T10:00:00.123Z"
    _, names, changes, least = attribute_walk.replace_walk(IDS[0], fragment, now, before)
    assert names == {NAMES[0]}
    assert [name for name, _, _ in changes] == NAMES[:2]
    assert least == history_sql.least_checked([(n, i) for n, i, _ in changes]) is not None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upserts())
@example(_twice(1, 2))
@example([[{"id": IDS[0], "type": [NS + "T"],
            "attrs": {NAMES[0]: [{"type": "Property", "value": 1}]}}]] * 2)
def test_upserts_in_one_pass_write_what_the_mutation_and_the_walk_wrote(
        batches: list[list[dict[str, Any]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fused, usual = Path(tmp) / "fused.db", Path(tmp) / "usual.db"
        changes = asyncio.run(_store_changes(fused, batches))
        with _unfused():
            assert asyncio.run(_store_changes(usual, batches)) == changes
        assert _tables(fused) == _tables(usual)
        assert _history(fused) == _history(usual)
        conn_f, conn_u = sqlite3.connect(fused), sqlite3.connect(usual)
        try:  # the stored documents byte for byte
            query = "SELECT id, doc FROM entities ORDER BY id"
            assert conn_f.execute(query).fetchall() == conn_u.execute(query).fetchall()
        finally:
            conn_f.close()
            conn_u.close()
