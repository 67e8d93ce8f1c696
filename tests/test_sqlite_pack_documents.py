"""A pack whose body is its entity's document (storage/sqlite/history_packs.py, schema 9).

The writer encodes an entity once: when the instances a write records are exactly the
entity's, one an attribute in the order of its ``attrs`` (the usual creation, a whole
replacement), the entity's document is the pack's body instead of a second encoding of
the same instances.  The properties: with or without the document, ``encode_write``
gives a pack of the same instances, numbers and times (or the same other history, or
the same error), for replacements of any shape, for writes that record a part of the
entity only, and for creations; a store's reads do not depend on the body's form
(tests/test_sqlite_history_packs.py).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sqlite_creation_writes import numbering
from test_sqlite_upsert_writer import IDS, NS, replacements, rewritten, usual_replacements

from ngsi_ld.errors import NgsiLdError
from storage.sqlite import attribute_walk, history_packs, history_rows

NOW = "2026-12-05T10:00:00Z"


def _history(before: Any, after: Any, now: str, changes: Any, least: Any,
             doc: bytes | None) -> Any:
    """What ``encode_write`` records (a pack as the instance rows it unpacks to), and the
    instance numbers it took; or its error."""
    taken, iids, block = numbering()
    try:
        found = history_rows.encode_write(before, after, now, iids, changes, block, least,
                                          doc=doc)
    except NgsiLdError as exc:
        return exc.__class__, exc.to_problem()
    except Exception as exc:  # what either way raises on odd stored states, alike
        return type(exc), str(exc)
    if found is None or found.prepared is None:
        return found, taken
    body, count, first, tmin, sig, names = found.prepared
    return (found.entity, found.rows, found.raw, history_packs.unpack(body, first), count, first,
            tmin, sig, set(names)), taken


def _alike(before: Any, after: Any, now: str, changes: Any, least: Any) -> None:
    try:
        doc = orjson.dumps(after)
    except TypeError:  # not plain JSON: the writer refuses it before its history
        return
    plain = _history(before, after, now, changes, least, None)
    assert _history(before, after, now, changes, least, doc) == plain


@settings(max_examples=300, deadline=None)
@given(st.one_of(replacements(), usual_replacements()))
def test_a_replacement_packs_the_same_instances_with_its_document(
        write: tuple[Any, Any, str]) -> None:
    before, fragment, now = write
    try:
        after, _, changes, least = attribute_walk.replace_walk(IDS[0], fragment, now, before)
    except Exception:  # refused (odd stored states too) before any history
        return
    _alike(before, after, now, changes, least)


@settings(max_examples=300, deadline=None)
@given(rewritten(), st.booleans())
def test_a_write_of_part_of_an_entity_packs_the_same_instances_with_its_document(
        attrs: tuple[dict[str, Any], dict[str, Any]], share: bool) -> None:
    # the changes of a walk: some attributes unchanged, removed or of several instances
    old, new = attrs
    before = {"id": IDS[0], "type": [NS + "T"], "createdAt": NOW, "modifiedAt": NOW,
              "attrs": old}
    after = {"id": IDS[0], "type": [NS + "T"], "createdAt": NOW, "modifiedAt": NOW,
             "attrs": new}
    if share:  # attributes the write kept are the same objects, as a mutation keeps them
        for name, instances in old.items():
            if new.get(name) == instances:
                new[name] = instances
    _, changes = attribute_walk.walk(before, after)
    _alike(before, after, NOW, changes, None)


@settings(max_examples=300, deadline=None)
@given(st.one_of(replacements(), usual_replacements()))
def test_a_creation_packs_the_same_instances_with_its_document(
        write: tuple[Any, Any, str]) -> None:
    _, fragment, now = write
    entity = copy.deepcopy(fragment)
    entity.update({"id": IDS[0], "createdAt": now, "modifiedAt": now})
    if not isinstance(entity.get("attrs"), dict):
        return
    _alike(None, entity, now, None, None)


def test_a_whole_replacement_is_packed_as_its_document() -> None:
    old = {"type": "Property", "value": 1, "createdAt": NOW, "modifiedAt": NOW}
    before = {"id": IDS[0], "type": [NS + "T"], "createdAt": NOW, "modifiedAt": NOW,
              "attrs": {NS + "a": [old], NS + "b": [{**old, "value": 2}]}}
    fragment = {"attrs": {NS + "a": [{"type": "Property", "value": 3}],
                          NS + "b": [{"type": "Property", "value": 2}]}}
    now = "2026-12-05T11:00:00Z"
    after, _, changes, least = attribute_walk.replace_walk(IDS[0], fragment, now, before)
    doc = orjson.dumps(after)
    found = history_rows.encode_write(before, after, now, iter(range(1, 9)).__next__, changes,
                                      lambda count: 1, least, doc=doc)
    assert found is not None and found.prepared is not None
    assert found.prepared[0] is doc and found.prepared[1:3] == (2, 1)
