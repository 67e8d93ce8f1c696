"""The SQLite query indexes follow every write, whatever changed.

``sqlite_index.sync`` only recomputes the attributes whose indexed parts
changed; the property: after syncing ``before`` then ``after``, the index rows
are exactly those of ``after`` written into an empty file.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_storage_query import ATTRS, NS, attributes

from storage.sqlite import index as sqlite_index
from storage.sqlite.geocells import point_cell

NAMES = [NS + a for a in ATTRS]
ENTITY_ID = "urn:x:A0"


def _entity(attrs: dict[str, Any]) -> dict[str, Any]:
    return {"id": ENTITY_ID, "type": [NS + "T"], "attrs": attrs}


def _restamped(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same instances written again: only their stamps differ."""
    return [{**i, "modifiedAt": "2026-11-22T00:00:01Z"} for i in instances]


@st.composite
def writes(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """An entity before and after a write that keeps, rewrites, replaces or drops each
    attribute and may add new ones."""
    before = draw(st.dictionaries(st.sampled_from(NAMES), attributes(), max_size=3))
    after: dict[str, Any] = {}
    for name, instances in before.items():
        fate = draw(st.sampled_from(["keep", "restamp", "replace", "drop"]))
        if fate == "keep":
            after[name] = instances
        elif fate == "restamp":
            after[name] = _restamped(instances)
        elif fate == "replace":
            after[name] = draw(attributes())
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=2)):
        after.setdefault(name, draw(attributes()))
    return _entity(before), _entity(after)


def _index(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
    values = conn.execute(
        "SELECT n.tenant, n.name, v.id, v.val, v.vocab FROM attr_values v"
        " JOIN names n ON n.nid = v.attr ORDER BY 1, 2, 3, 4, 5"
    ).fetchall()
    boxes = conn.execute(
        "SELECT g.tenant, g.id, g.attr, r.minx, r.maxx, r.miny, r.maxy"
        " FROM geo_rows g JOIN geo_rtree r ON r.id = g.rid ORDER BY 1, 2, 3, 4, 5, 6, 7"
    ).fetchall()
    return values, boxes


def _fresh(conn_entities: list[dict[str, Any] | None]) -> tuple[list[Any], list[Any]]:
    conn = sqlite3.connect(":memory:")
    sqlite_index.create(conn, rebuild=False)
    state = None
    for entity in conn_entities:
        sqlite_index.sync(conn, "", ENTITY_ID, state, entity)
        state = entity
    return _index(conn)


@settings(max_examples=300, deadline=None)
@given(writes())
def test_rows_after_a_write_are_those_of_the_new_state(write: tuple[Any, Any]) -> None:
    before, after = write
    assert _fresh([before, after]) == _fresh([after])


@settings(max_examples=100, deadline=None)
@given(writes())
def test_deleting_leaves_no_rows(write: tuple[Any, Any]) -> None:
    before, after = write
    assert _fresh([before, after, None]) == ([], [])


def test_a_restamped_attribute_is_not_recomputed() -> None:
    instances = [{"type": "Property", "value": 21, "modifiedAt": "2026-11-22T00:00:00Z"}]
    before = _entity({NS + "a": instances, NS + "b": instances})
    after = _entity({NS + "a": _restamped(instances),
                     NS + "b": [{"type": "Property", "value": 22}]})
    assert sqlite_index.changed_names(before, after) == {NS + "b"}
    assert sqlite_index.changed_names(before, before) == set()


def test_a_change_of_kind_with_the_same_value_is_recomputed() -> None:
    before = _entity({NS + "a": [{"type": "VocabProperty", "vocab": NS + "on"}]})
    after = _entity({NS + "a": [{"type": "Property", "vocab": NS + "on", "value": NS + "on"}]})
    assert sqlite_index.changed_names(before, after) == {NS + "a"}
    assert _fresh([before, after]) == _fresh([after])


def test_a_new_main_member_of_the_same_kind_is_recomputed() -> None:
    for kind, member, old, new in [
        ("Relationship", "object", "urn:x:A1", "urn:x:B1"),
        ("VocabProperty", "vocab", NS + "on", NS + "x"),
        ("LanguageProperty", "languageMap", {"en": "on"}, {"en": "x"}),
    ]:
        before = _entity({NS + "a": [{"type": kind, member: old}]})
        after = _entity({NS + "a": [{"type": kind, member: new}]})
        assert sqlite_index.changed_names(before, after) == {NS + "a"}, kind
        assert _fresh([before, after]) == _fresh([after]), kind


def test_a_number_that_becomes_a_boolean_is_recomputed() -> None:
    # Python's 1 == True: the index must not take them for the same value.
    for old, new in [(1, True), ([1, 2], [True, 2]), ({"k": 0}, {"k": False}), (1, 1.0)]:
        before = _entity({NS + "a": [{"type": "Property", "value": old}]})
        after = _entity({NS + "a": [{"type": "Property", "value": new}]})
        assert sqlite_index.changed_names(before, after) == {NS + "a"}, (old, new)
        assert _fresh([before, after]) == _fresh([after]), (old, new)


def test_the_index_of_a_point_takes_numbers_only() -> None:
    location = NS + "location"

    def indexed(coordinates: Any) -> tuple[list[Any], set[Any]]:
        point = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": coordinates}}
        entity = _entity({location: [point]})
        return sqlite_index.geo_boxes(entity), sqlite_index.value_rows(entity)

    # a Point of the lon/lat domain: the cell in its value row, no box (schema 11)
    cell = point_cell(2.0, 41.5)
    assert indexed([2, 41.5]) == ([], {(location, cell, 0)})
    assert indexed([2.0, 41.5, 7]) == ([], {(location, cell, 0)})  # altitude
    # outside the domain: its box and the marker, as before
    assert indexed([200, 41.5]) == ([(location, 200.0, 200.0, 41.5, 41.5)],
                                    {(location, sqlite_index.MARKER, 0)})
    for malformed in ([True, 41.5], [2, "41.5"], [2], []):
        assert indexed(malformed) == ([], {(location, sqlite_index.MARKER, 0)}), malformed


_scalar = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=3),
                    st.booleans(), st.none())
_geometry = st.builds(lambda kind, x, y: {"type": kind, "coordinates": [x, y]},
                      st.sampled_from(["Point", "Polygon", "Feature", "point"]),
                      st.floats(-180, 180), st.one_of(st.floats(-90, 90), st.text(max_size=1)))
_main = st.one_of(_scalar, _geometry, _scalar.map(lambda v: {"@type": "DateTime", "@value": v}),
                  st.lists(_scalar, max_size=2), st.just({"a": 1}))
_usual_instance = st.builds(
    lambda kind, member, value, extra: {"type": kind, **({member: value} if member else {}),
                                        **extra},
    st.sampled_from(["Property", "GeoProperty", "Relationship", "VocabProperty",
                     "LanguageProperty", None]),
    st.sampled_from(["value", "object", "vocab", None]), _main,
    st.sampled_from([{}, {"observedAt": "2026-11-22T00:00:00Z"},
                     {"value": {"type": "Point", "coordinates": [1, 2]}}]))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), st.one_of(
    _usual_instance.map(lambda i: [i]), st.lists(_usual_instance, max_size=2),
    _usual_instance, st.just([3])), max_size=4))
def test_creation_rows_are_the_value_rows_and_boxes(attrs: dict[str, Any]) -> None:
    """A creation's rows (a prepared creation's, and a created entity's in a write): the
    one pass of its usual attributes, or the general functions, give what value_rows
    and geo_boxes give, each row once."""
    entity = _entity(attrs)
    rows, boxes = sqlite_index.creation_rows(entity)
    flat = [tuple(rows[n:n + 3]) for n in range(0, len(rows), 3)]
    assert len(rows) % 3 == 0 and len(flat) == len(set(flat))
    assert set(flat) == sqlite_index.value_rows(entity)
    assert boxes == sqlite_index.geo_boxes(entity)
