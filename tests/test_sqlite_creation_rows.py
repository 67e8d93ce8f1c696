"""The rows of a creation written by the SQLite store (storage.sqlite.bulk.Rows): its
types, attribute names and discovery counters are taken from a cache by the entity's
shape (storage.sqlite.prepared.creation_shape); the tables hold what the uncached
computation gives, for any entity, odd shapes and shapes met before included; and
value_rows' quick path for the usual attribute gives what its general walk gives, and
creation_rows' one pass what value_rows and geo_boxes give."""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.instances import MAIN_MEMBER
from storage.discovery import add_stats, stats_delta
from storage.helpers import entity_types
from storage.sqlite import index as sqlite_index
from storage.sqlite import names as sqlite_names
from storage.sqlite import sql
from storage.sqlite.attribute_walk import changed_names
from storage.sqlite.bulk import Rows

TENANT = "t"

# few distinct names and kinds, equal-hashing ones among them (1, 1.0, True): shapes
# repeat across entities and examples, which is what the cache keys on
_kinds = st.sampled_from(["Property", "Relationship", "VocabProperty", "LanguageProperty",
                          "GeoProperty", 1, 1.0, True, None, "Other"])
_values = st.one_of(st.integers(-3, 3), st.sampled_from([2**70, 1.5, True, False, None]),
                    st.sampled_from(["a", "b"]), st.lists(st.integers(0, 2), max_size=2),
                    st.just({"@value": "v"}),
                    st.just({"type": "Point", "coordinates": [1.0, 2.0]}))


def _instance(kind: Any, value: Any, member: str | None) -> dict[str, Any]:
    """An instance whose main member (``member`` None) or another member holds ``value``."""
    if member is None:
        member = MAIN_MEMBER.get(kind, "value") if isinstance(kind, str) else "value"
    found = {member: value}
    if kind is not None:
        found["type"] = kind
    return found


_instances = st.one_of(
    st.builds(_instance, _kinds, _values,
              st.sampled_from([None, None, None, "value", "object", "vocab", "languageMap"])),
    st.sampled_from(["text", 3, None, ["x"]]),  # instances that are not objects
)
_attribute = st.one_of(st.lists(_instances, max_size=3), _instances)  # lists or not
_types = st.one_of(
    st.lists(st.sampled_from(["Thing", "Device", 1, True, 1.0, None]), max_size=3),
    st.sampled_from(["Thing", 7, None, ["Thing", ["nested"]], {"a": 1}]),
)
_attrs = st.one_of(
    st.dictionaries(st.sampled_from(["temperature", "name", "location", "https://x/p"]),
                    _attribute, max_size=4),
    st.sampled_from([None, "attrs", 3, ["temperature"]]),  # attrs that are not an object
)
_entity = st.builds(lambda t, a: {"type": t, "attrs": a}, _types, _attrs)


def _tables(conn: sqlite3.Connection) -> dict[str, Any]:
    return {
        "entity_types": sorted(conn.execute(
            "SELECT n.name, t.id FROM entity_types t JOIN names n ON n.nid = t.type")),
        "attr_values": sorted(conn.execute(
            "SELECT n.name, v.id, v.val, typeof(v.val), v.vocab FROM attr_values v"
            " JOIN names n ON n.nid = v.attr"), key=repr),
        "geo": sorted(conn.execute(
            "SELECT g.id, g.attr, r.minx, r.maxx, r.miny, r.maxy FROM geo_rows g"
            " JOIN geo_rtree r ON r.id = g.rid")),
        "stats": sorted(conn.execute(
            "SELECT type, attr, kind, n FROM discovery_stats WHERE tenant = ?", (TENANT,))),
    }


def _uncached(conn: sqlite3.Connection, entities: list[dict[str, Any]]) -> None:
    """The rows of the creations computed entity by entity, as the general path of an
    update computes them."""
    types, values, boxes, stats = [], [], [], {}
    for n, entity in enumerate(entities):
        entity_id = f"urn:e:{n}"
        names = changed_names(None, entity)
        add_stats(stats, stats_delta(None, entity, names))
        types.extend((t, entity_id) for t in entity_types(entity))
        if names:
            values.extend((a, entity_id, v, k)
                          for a, v, k in sqlite_index.value_rows(entity, names))
            boxes.extend((entity_id, *box) for box in sqlite_index.geo_boxes(entity))
    nids = sqlite_names.ids(
        conn, TENANT, {t for t, _ in types} | {a for a, _, _, _ in values})
    conn.executemany("INSERT INTO entity_types (type, id) VALUES (?, ?)",
                     [(nids[t], i) for t, i in types])
    conn.executemany("INSERT INTO attr_values (attr, id, val, vocab) VALUES (?, ?, ?, ?)",
                     [(nids[a], i, v, k) for a, i, v, k in values])
    for rid, (entity_id, attr, *box) in enumerate(boxes, 1):
        conn.execute("INSERT INTO geo_rows (rid, tenant, id, attr) VALUES (?, ?, ?, ?)",
                     (rid, TENANT, entity_id, attr))
        conn.execute("INSERT INTO geo_rtree VALUES (?, ?, ?, ?, ?)", (rid, *box))
    conn.executemany("INSERT INTO discovery_stats VALUES (?, ?, ?, ?, ?)",
                     [(TENANT, *key, n) for key, n in stats.items()])


def _database() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    sql.create_schema(conn)
    return conn


@settings(max_examples=300, deadline=None)
@given(st.lists(_entity, max_size=8))
def test_a_creations_rows_are_those_computed_without_the_cache(
        entities: list[dict[str, Any]]) -> None:
    written, expected = _database(), _database()
    rows = Rows(TENANT)
    for n, entity in enumerate(entities):
        rows.add(f"urn:e:{n}", None, entity, doc=b"{}")
    rows.write(written, sql.next_version)
    _uncached(expected, entities)
    assert _tables(written) == _tables(expected)


def test_entities_of_one_shape_share_their_counters() -> None:
    # a Streetlight-like shape met again: its counters' change added once per shape
    conn = _database()
    rows = Rows(TENANT)
    light = {"type": ["Streetlight"], "attrs": {
        "name": [{"type": "Property", "value": "a"}],
        "ref": [{"type": "Relationship", "object": "urn:x"}]}}
    for n in range(3):
        rows.add(f"urn:e:{n}", None, light, doc=b"{}")
    rows.write(conn, sql.next_version)
    counted = Counter({(t, a, k): n for t, a, k, n in _tables(conn)["stats"]})
    assert counted == Counter({("Streetlight", "", ""): 3, ("Streetlight", "name", "Property"): 3,
                               ("", "name", "Property"): 3, ("", "ref", "Relationship"): 3,
                               ("Streetlight", "ref", "Relationship"): 3})


@settings(max_examples=300, deadline=None)
@given(_entity)
def test_value_rows_are_those_of_the_general_walk_over_every_instance(
        entity: dict[str, Any]) -> None:
    # value_rows tells the usual attribute (one instance, a string or number) at once
    expected: set[Any] = set()
    for name, instances in sqlite_index._attributes(entity).items():
        sqlite_index._add_rows(expected, name, instances)
    assert sqlite_index.value_rows(entity) == expected


@settings(max_examples=300, deadline=None)
@given(_entity)
def test_a_creations_rows_are_the_value_rows_and_boxes_of_any_entity(
        entity: dict[str, Any]) -> None:
    # creation_rows (a prepared creation's rows, and those Rows notes for a creation)
    # takes one pass where every attribute is usual: odd shapes give the general answer
    rows, boxes = sqlite_index.creation_rows(entity)
    it = iter(rows)
    flat = list(zip(it, it, it, strict=True))
    assert len(flat) == len(set(flat))
    assert set(flat) == sqlite_index.value_rows(entity)
    assert boxes == sqlite_index.geo_boxes(entity)


class _Name(str):
    """A str subclass: equal to, and hashing as, the plain str it holds."""


def test_names_of_a_str_subclass_in_a_shape_never_met_are_written_as_plain_names() -> None:
    # the shape cache interns names on a miss; sys.intern refuses str subclasses, which
    # failed the whole batch (a shape of its own, so the cache has not seen it)
    conn, expected = _database(), _database()
    odd = {"type": [_Name("SubclassedThing")], "attrs": {
        _Name("subclassedName"): [{"type": _Name("Property"), "value": 1}],
        "plainName": [{"type": "Relationship", "object": "urn:x"}]}}
    rows = Rows(TENANT)
    rows.add("urn:e:0", None, odd, doc=b"{}")
    rows.write(conn, sql.next_version)
    _uncached(expected, [odd])
    assert _tables(conn) == _tables(expected)
    assert ("SubclassedThing", "urn:e:0") in _tables(conn)["entity_types"]
