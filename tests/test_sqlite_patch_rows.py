"""A PATCH on the SQLite writer: the shortcuts of the usual update change nothing.

``storage.sqlite.bulk.Rows.add`` tells the ``attr_values`` rows of an update whose
changed attributes each keep one instance of one kind with a string or number
(``storage.sqlite.index.usual_update``, the usual PATCH) without computing the value
rows, boxes and discovery counters of both states.  The property: for any pair of
states and any names given, it notes what the general computation notes.  Likewise
the Entity record of a write that merges into the one stored before
(``storage.temporal.merge_record``: the write's own when it is the merge) and the
types a fragment of attributes only adds (``ngsi_ld.operations``: none).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from test_sqlite_upsert_writer import KINDS, LOOKALIKES, NAMES, rewritten
from test_storage_query import scalars

from ngsi_ld import operations
from ngsi_ld.temporal import EntityRecord
from storage.sqlite import index as sqlite_index
from storage.sqlite.bulk import Rows
from storage.temporal import merge_record

TYPES = st.sampled_from([["urn:T"], ["urn:T"], ["urn:T", "urn:U"]])
MEMBER = {"Property": "value", "GeoProperty": "value", "Relationship": "object",
          "VocabProperty": "vocab", "LanguageProperty": "languageMap", "Other": "value"}
#: strings and numbers mostly (the usual PATCH), now and then anything else
VALUES = st.one_of(scalars, scalars, scalars, LOOKALIKES,
                   st.just({"type": "Point", "coordinates": [1.5, 2]}))


@st.composite
def instance(draw: st.DrawFn, kind: str | None = None) -> dict[str, Any]:
    """One instance of a kind with its main member (a string or number mostly), now
    and then a "value" beside it."""
    kind = kind or draw(st.sampled_from([*KINDS, "Other"]))
    inst = {"type": kind, MEMBER[kind]: draw(VALUES)}
    if MEMBER[kind] != "value" and draw(st.integers(0, 4)) == 0:
        inst["value"] = draw(VALUES)
    return inst


@st.composite
def patched(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attributes of one instance before and after a PATCH of some of them: the same
    kind mostly, another value mostly."""
    old = {name: [draw(instance())] for name in draw(st.sets(st.sampled_from(NAMES)))}
    new = dict(old)
    for name in draw(st.sets(st.sampled_from(NAMES), min_size=1)):
        kind = old[name][0]["type"] if name in old and draw(st.integers(0, 5)) else None
        new[name] = [draw(instance(kind))]
    return old, new


def _noted(before: dict[str, Any], after: dict[str, Any], names: set[str] | None
           ) -> dict[str, Any]:
    rows = Rows("t")
    rows.add("urn:x:1", before, after, None, None if names is None else set(names))
    return {slot: (Counter(value) if isinstance(value, list) else value)
            for slot in _ROW_FIELDS for value in [getattr(rows, slot)]}


#: what a Rows notes: its fields, read from the class (a compiled class has no
#: __slots__: its fields are descriptors as a slotted class's are), methods aside
_ROW_FIELDS = [name for name in dir(Rows)
               if not name.startswith(("__", "_prepared")) and not callable(getattr(Rows, name))]


@settings(max_examples=800, deadline=None)
@given(st.one_of(rewritten(), patched(), patched()), TYPES, TYPES,
       st.none() | st.sets(st.sampled_from(NAMES)))
def test_an_update_notes_what_the_general_computation_notes(
        write: tuple[Any, Any], old_types: list[str], new_types: list[str],
        extra: set[str] | None) -> None:
    old, new = write
    before = {"id": "urn:x:1", "type": old_types, "attrs": old}
    after = {"id": "urn:x:1", "type": new_types, "attrs": new}
    # the names a caller gives: the changed ones and maybe more (None: computed)
    names = None if extra is None else sqlite_index.changed_names(before, after) | extra
    with mock.patch.object(sqlite_index, "usual_update", return_value=None):
        general = _noted(before, after, names)
    assert _noted(before, after, names) == general


def test_the_usual_patch_takes_the_one_pass() -> None:
    name = NAMES[0]
    before = {"id": "urn:x:1", "type": ["urn:T"],
              "attrs": {name: [{"type": "Property", "value": 1}],
                        NAMES[1]: [{"type": "Property", "value": "ok"}]}}
    after = {**before, "attrs": {**before["attrs"], name: [{"type": "Property", "value": 2}]}}
    assert sqlite_index.usual_update(before, after, {name}) == (
        [(name, 1, 0)], [(name, 2, 0)])
    # a geometry, a boolean, a change of kind: the general computation
    for value in ({"type": "Point", "coordinates": [1, 2]}, True):
        odd = {**after, "attrs": {name: [{"type": "Property", "value": value}]}}
        assert sqlite_index.usual_update(before, odd, {name}) is None
    relationship = {**after, "attrs": {name: [{"type": "Relationship", "object": "urn:a"}]}}
    assert sqlite_index.usual_update(before, relationship, {name}) is None
    # a geometry beside a Relationship's object (geo_boxes reads it), either side
    located = {**after, "attrs": {name: [{"type": "Relationship", "object": "urn:b",
                                          "value": {"type": "Point", "coordinates": [1, 2]}}]}}
    assert sqlite_index.usual_update(relationship, located, {name}) is None
    assert sqlite_index.usual_update(located, relationship, {name}) is None


STAMPS = st.none() | st.sampled_from(["", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"])
TYPE_TUPLES = st.lists(st.sampled_from(["urn:T", "urn:U"]), max_size=3).map(tuple)
RECORDS = st.builds(EntityRecord, st.just("urn:x:1"), TYPE_TUPLES, STAMPS, STAMPS, STAMPS)


@given(RECORDS, RECORDS)
def test_merging_a_record_gives_the_merge_of_its_fields(stored: EntityRecord,
                                                        new: EntityRecord) -> None:
    # merge_record may hand back ``new`` itself: it equals the record of the merged fields
    assert merge_record(stored, new) == EntityRecord(
        new.entity_id, tuple(dict.fromkeys((*stored.types, *new.types))),
        stored.created_at or new.created_at, new.modified_at or stored.modified_at,
        new.deleted_at)


@given(st.none() | st.just("urn:T") | st.lists(st.sampled_from(["urn:T", "urn:U"]),
                                               max_size=3),
       st.none() | st.just("") | st.just("urn:U") | st.lists(st.sampled_from(["urn:T", "urn:U"]),
                                                            max_size=2))
def test_a_fragment_adds_the_types_the_union_gives(current: Any, added: Any) -> None:
    entity: dict[str, Any] = {} if current is None else {"type": current}
    fragment: dict[str, Any] = {} if added is None else {"type": added}
    expected = operations._union(current or [], operations._types(fragment))
    changed = expected != (current or [])
    assert operations._add_types(entity, fragment) is changed
    assert entity.get("type") == (expected if changed else current)
