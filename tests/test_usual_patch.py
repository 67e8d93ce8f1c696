"""The writer's lane for the usual PATCH (``storage/sqlite/usual_patch.py``): a file of
5.6.2 PATCHes written with the lane holds the same tables, and the writes give the same
Changes, UpdateResults and errors, as the same writes with the lane off (every update
walked, ``history_rows.one_instance``), for stored entities around the usual shape and
malformed ones (attributes of every kind and value, datasetIds, unicode names, types a
string, scopes, an attribute not a list, an instance not an object, kinds the history
refuses, odd stamps), PATCHes of the usual form and others (a datasetId, a Null, two
attributes), an entity written twice in one transaction, and a PATCH equal to what is
stored (nothing recorded)."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsi_ld.operations import USUAL, update_attributes
from ngsi_ld.temporal import recorder_at
from storage.sqlite import usual_patch, writes
from tests.test_loader_prepared import tables
from tests.test_sqlite_creation_writes import _open, write_transaction

_IDS = ["urn:e:1", "urn:e:2", "urn:e:ü"]
_NAMES = ["https://x/a", "https://x/b", "https://x/ñame"]
_NOW = st.sampled_from(["2026-12-06T15:00:00.123Z", "2026-12-06T15:00:00.123Z",
                        "2026-12-06T15:00:01Z", "2026-12-06T14:59:59.5Z"])
_STAMP = st.one_of(_NOW, st.sampled_from(["2026-12-06T17:00:00+02:00", "later", ""]))
_SCALAR = st.one_of(st.integers(-2, 2), st.booleans(), st.floats(allow_nan=False, width=32),
                    st.text(max_size=3), st.none())
_VALUE = st.one_of(_SCALAR, st.lists(_SCALAR, max_size=2),
                   st.fixed_dictionaries({"type": st.just("Point"),
                                          "coordinates": st.just([1.5, 2.0])}))


@st.composite
def _stored_instance(draw: Any) -> Any:
    """An attribute instance as a store may hold it, usual or not (or not an object)."""
    kind = draw(st.sampled_from(["Property"] * 4 + ["Relationship", "GeoProperty",
                                                    "LanguageProperty", "Bogus"]))
    inst: dict[str, Any] = {"type": kind}
    if kind == "Relationship":
        inst["object"] = draw(st.sampled_from(["urn:x:1", "urn:x:2"]))
    elif kind == "LanguageProperty":
        inst["languageMap"] = {"en": draw(st.text(max_size=2))}
    elif kind == "GeoProperty":
        inst["value"] = {"type": "Point", "coordinates": [1.5, 2.0]}
    else:
        inst["value"] = draw(_VALUE)
    for member in ("createdAt", "modifiedAt", "observedAt"):
        if draw(st.booleans()):
            inst[member] = draw(_STAMP)
    if draw(st.integers(0, 5)) == 0:
        inst["datasetId"] = "urn:ds:1"
    if draw(st.booleans()):
        inst["unitCode"] = "CEL"
    if draw(st.integers(0, 9)) == 0:
        inst["sub"] = {"https://x/s": {"type": "Property", "value": 1}}
    return inst if draw(st.integers(0, 19)) else draw(st.sampled_from([[], "x", 1]))


@st.composite
def _entity(draw: Any, entity_id: str) -> Any:
    """A stored entity (written as it is, malformed ones too)."""
    attrs: Any = {}
    for name in draw(st.lists(st.sampled_from(_NAMES), unique=True, max_size=3)):
        instances = draw(st.lists(_stored_instance(), min_size=1, max_size=2))
        attrs[name] = instances if draw(st.integers(0, 14)) else instances[0]
    entity: dict[str, Any] = {"id": entity_id, "type": draw(st.sampled_from(
        [["https://x/T"], ["https://x/T"], ["https://x/T", "https://x/U"], "https://x/T"])),
        "createdAt": "2026-12-06T14:00:00Z", "modifiedAt": "2026-12-06T14:00:00Z",
        "attrs": attrs if draw(st.integers(0, 19)) else []}
    scope = draw(st.sampled_from([None, None, "/a", ["/a", "/b"]]))
    if scope is not None:
        entity["scope"] = scope
    return entity


@st.composite
def _fragment(draw: Any) -> Any:
    """A PATCH's fragment: mostly of the usual form, sometimes not."""
    name = draw(st.sampled_from(_NAMES))
    inst: dict[str, Any] = {"type": draw(st.sampled_from(
        ["Property"] * 5 + ["Relationship", "Bogus"]))}
    if inst["type"] == "Relationship":
        inst["object"] = draw(st.sampled_from(["urn:x:1", "urn:x:2"]))
    else:
        inst["value"] = draw(st.one_of(_SCALAR, _SCALAR, _VALUE))
    if draw(st.booleans()):
        inst["unitCode"] = "CEL"
    odd = draw(st.integers(0, 7))
    if odd == 1:
        inst["datasetId"] = "urn:ds:1"
    elif odd == 2:
        inst = {"type": "Property", "value": "urn:ngsi-ld:null"}
    attrs = {name: [inst]}
    if odd == 3:
        attrs[_NAMES[0] if name != _NAMES[0] else _NAMES[1]] = [{"type": "Property",
                                                                   "value": 7}]
    return {"attrs": attrs}


def _stored(entity: Any) -> Any:
    def mutation(current: Any) -> Any:
        return copy.deepcopy(entity)
    return mutation


def _run(path: Path, entities: list[Any],
         transactions: list[list[tuple[str, str, Any]]]) -> list[Any]:
    """The entities stored as they are, then each list of PATCHes (id, time, fragment)
    in its transaction; what each write gave (its Change's states, its UpdateResult;
    or its error)."""
    conn, history = _open(path)
    now = "2026-12-06T14:00:00Z"
    outcomes: list[Any] = []
    try:
        write_transaction(conn, history, [(e["id"], _stored(e), recorder_at(now))
                                          for e in entities])
        for patches in transactions:
            mutations = [(i, update_attributes(i, copy.deepcopy(f), at), at)
                         for i, at, f in patches]
            results = write_transaction(conn, history,
                                        [(i, m, recorder_at(at)) for i, m, at in mutations])
            for (ok, value), (_, mutation, _) in zip(results, mutations, strict=True):
                outcomes.append((type(value).__name__, str(value)) if not ok else (
                    value.before, value.after, value.expires, mutation.result.to_dict()))
    finally:
        conn.close()
    return outcomes


_PATCH = st.tuples(st.sampled_from(_IDS), _NOW, _fragment())


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.lists(st.lists(_PATCH, min_size=1, max_size=3), min_size=1, max_size=6))
def test_a_file_of_patches_written_by_the_lane_is_the_one_the_general_steps_write(
        data: st.DataObject, transactions: list[list[tuple[str, str, Any]]]) -> None:
    entities = [data.draw(_entity(i)) for i in _IDS[:data.draw(st.integers(1, 3))]]
    with tempfile.TemporaryDirectory() as tmp:
        lane = _run(Path(tmp) / "lane.db", entities, transactions)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(writes, "USUAL", "no_such_member")  # every update walked
            general = _run(Path(tmp) / "general.db", entities, transactions)
        assert lane == general
        assert tables(Path(tmp) / "lane.db") == tables(Path(tmp) / "general.db")


def _usual_entity(entity_id: str) -> Any:
    return {"id": entity_id, "type": ["https://x/T"], "createdAt": "2026-12-06T14:00:00Z",
            "modifiedAt": "2026-12-06T14:00:00Z", "attrs": {
                "https://x/a": [{"type": "Property", "value": 1, "unitCode": "CEL",
                                 "createdAt": "2026-12-06T14:00:00Z",
                                 "modifiedAt": "2026-12-06T14:00:00Z"}],
                "https://x/b": [{"type": "Property", "value": "ok"}]}}


def test_the_usual_patch_takes_the_lane_and_a_patch_that_changes_nothing_does_not() -> None:
    taken: list[bool] = []
    real = usual_patch.usual_patch

    def watched(*args: Any) -> Any:
        told = real(*args)
        taken.append(told is not None)
        return told

    at = "2026-12-06T15:00:00.123Z"
    same = {"attrs": {"https://x/a": [{"type": "Property", "value": 2}]}}
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setattr(writes, "usual_patch", watched)
        outcomes = _run(Path(tmp) / "f.db", [_usual_entity("urn:e:1")], [
            [("urn:e:1", at, same)], [("urn:e:1", at, same)],  # the second: nothing new
            [("urn:e:1", at, {"attrs": {"https://x/a": [
                {"type": "Property", "value": 3, "datasetId": "urn:ds:1"}]}})]])
    # the datasetId's PATCH is not of the usual form: its mutation is not marked
    assert taken == [True, False]
    first, second = outcomes[0][1], outcomes[1][1]
    assert first["attrs"]["https://x/a"] == [{"type": "Property", "value": 2,
                                              "createdAt": "2026-12-06T14:00:00Z",
                                              "modifiedAt": at}]
    assert second == first


def test_a_mutation_tells_its_usual_write_for_its_last_call_only() -> None:
    at = "2026-12-06T15:00:00.123Z"
    mutation = update_attributes(
        "urn:e:1", {"attrs": {"https://x/a": [{"type": "Property", "value": 2}]}}, at)
    mutation(_usual_entity("urn:e:1"))
    assert getattr(mutation, USUAL) == "https://x/a"
    several = _usual_entity("urn:e:1")
    several["attrs"]["https://x/a"].append({"type": "Property", "value": 5,
                                            "datasetId": "urn:ds:1"})
    mutation(several)  # two instances: the general way
    assert getattr(mutation, USUAL) is None
