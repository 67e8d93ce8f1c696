"""Deletions in notifications: NGSI-LD Nulls by attribute kind, datasetIds, showChanges,
deleted entities (clauses 5.8.6, 5.2.1; ETSI 046_21, 046_22, 046_34 to 046_39)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.changes import ChangeEvent, diff
from ngsi_ld.jsonld import compile_context, core_context_url
from ngsi_ld.timeutil import parse_datetime
from subscriptions import Rendering, compile_matcher, parse_members
from subscriptions.deletions import removed_instances

CORE = core_context_url("1.8")
CTX = compile_context(None, {}, CORE)
V = "https://uri.etsi.org/ngsi-ld/default-context/"
NULL = "urn:ngsi-ld:null"
NOW = "2026-01-01T00:00:00.000Z"
STAMPS = {"createdAt": "2025-01-01T00:00:00.000Z", "modifiedAt": "2025-01-02T00:00:00.000Z"}

#: one attribute of every kind (internal form), the Null it becomes, its previous member
KINDS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "Property": ({"value": "Eiffel Tower"}, {"value": NULL},
                 {"previousValue": "Eiffel Tower"}),
    "GeoProperty": ({"value": {"type": "Point", "coordinates": [2.3, 48.9]}}, {"value": NULL},
                    {"previousValue": {"type": "Point", "coordinates": [2.3, 48.9]}}),
    "Relationship": ({"object": "urn:ngsi-ld:City:Paris"}, {"object": NULL},
                     {"previousObject": "urn:ngsi-ld:City:Paris"}),
    "LanguageProperty": ({"languageMap": {"fr": "Grand Place"}},
                         {"languageMap": {"@none": NULL}},
                         {"previousLanguageMap": {"fr": "Grand Place"}}),
    "VocabProperty": ({"vocab": V + "monument"}, {"vocab": NULL},
                      {"previousVocab": "monument"}),
    "JsonProperty": ({"json": {"id": "x", "null": None}}, {"json": NULL},
                     {"previousJson": {"id": "x", "null": None}}),
    "ListProperty": ({"valueList": [1, 2]}, {"valueList": [NULL]},
                     {"previousValueList": [1, 2]}),
}


def building(**attrs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:Building:1", "type": [V + "Building"], **STAMPS,
            "attrs": {V + name: instances for name, instances in attrs.items()}}


def instance(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, **KINDS[kind][0], **STAMPS, **extra}


def rendering(**notification: Any) -> Rendering:
    triggers = notification.pop("triggers", ["attributeDeleted"])
    doc = parse_members({"type": "Subscription", "entities": [{"type": "Building"}],
                         "notificationTrigger": triggers,
                         "notification": {"endpoint": {"uri": "http://e.org/n"},
                                          **notification}},
                        CTX.expand_term, _now(), partial=False)
    return Rendering.of(doc, CTX)


def _now() -> datetime:
    return parse_datetime("2025-06-01T00:00:00Z")


def change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> ChangeEvent:
    event = diff("", before, after)
    assert event is not None
    return event


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_deleted_attribute_is_the_null_of_its_kind(kind: str) -> None:
    before = building(other=[instance("Property")], gone=[instance(kind)])
    after = building(other=[instance("Property")])
    got = rendering().change(change(before, after), NOW)
    assert got["gone"] == {"type": kind, **KINDS[kind][1]}  # deletedAt is a system attribute
    assert got["other"] == {"type": "Property", "value": "Eiffel Tower"}
    with_sys = rendering(sysAttrs=True).change(change(before, after), NOW)
    assert with_sys["gone"]["deletedAt"] == NOW


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_show_changes_gives_the_previous_member_of_a_deleted_attribute(kind: str) -> None:
    before = building(gone=[instance(kind)])
    got = rendering(showChanges=True).change(change(before, building()), NOW)
    assert got["gone"] == {"type": kind, **KINDS[kind][1], **KINDS[kind][2]}


def test_a_relationship_list_is_deleted_as_a_list() -> None:
    before = building(gone=[{"type": "ListRelationship", "objectList": ["urn:x:1"]}])
    got = rendering(showChanges=True).change(change(before, building()), NOW)
    assert got["gone"]["type"] == "ListRelationship"
    assert got["gone"]["previousObjectList"] == ["urn:x:1"]
    assert [item["object"] for item in got["gone"]["objectList"]] == [NULL]


def test_key_values_and_concise() -> None:
    event = change(building(gone=[instance("Property")]), building())
    assert rendering(format="keyValues").change(event, NOW)["gone"] == NULL
    assert rendering(format="concise").change(event, NOW)["gone"] == NULL
    assert rendering(format="concise", showChanges=True).change(event, NOW)["gone"] == {
        "value": NULL, "previousValue": "Eiffel Tower"}


NAMES = [instance("Property", value="Eiffel Tower"),
         instance("Property", value="Tour Eiffel", datasetId="urn:ngsi-ld:Dataset:fr"),
         instance("Property", value="Eiffelturm", datasetId="urn:ngsi-ld:Dataset:de")]


def test_an_instance_deleted_by_dataset_id_is_a_null_next_to_the_others() -> None:
    event = change(building(name=NAMES), building(name=[NAMES[0], NAMES[2]]))
    assert compile_matcher(_doc(["attributeDeleted"]), CTX.expand_term).concerns(event)
    got = rendering().change(event, NOW)["name"]
    assert {"type": "Property", "datasetId": "urn:ngsi-ld:Dataset:fr", "value": NULL} in got
    assert len(got) == 3
    simplified = rendering(format="keyValues").change(event, NOW)["name"]
    assert simplified == {"dataset": {"@none": "Eiffel Tower",
                                      "urn:ngsi-ld:Dataset:de": "Eiffelturm",
                                      "urn:ngsi-ld:Dataset:fr": NULL}}


def test_an_attribute_deleted_with_every_instance_is_one_null() -> None:
    event = change(building(name=NAMES), building())
    assert rendering().change(event, NOW)["name"] == {"type": "Property", "value": NULL}


def test_without_attribute_deleted_nothing_deleted_is_shown() -> None:
    event = change(building(name=NAMES, t=[instance("Property")]),
                   building(t=[instance("Property", value=2)]))
    got = rendering(triggers=["attributeUpdated"]).change(event, NOW)
    assert "name" not in got and got["t"]["value"] == 2


def test_a_deleted_entity_carries_its_system_attributes_with_sys_attrs() -> None:
    event = change(building(name=NAMES), None)
    plain = rendering(triggers=["entityDeleted"]).change(event, NOW)
    assert plain == {"id": "urn:ngsi-ld:Building:1", "type": "Building", "deletedAt": NOW}
    with_sys = rendering(triggers=["entityDeleted"], sysAttrs=True).change(event, NOW)
    assert with_sys == {"id": "urn:ngsi-ld:Building:1", "type": "Building", **STAMPS,
                        "deletedAt": NOW}


def test_a_deleted_entity_with_show_changes_gives_every_previous_value() -> None:
    before = building(**{f"my{kind}": [instance(kind)] for kind in KINDS})
    got = rendering(triggers=["entityDeleted"], showChanges=True).change(
        change(before, None), NOW)
    assert got["deletedAt"] == NOW
    for kind, (_, null, previous) in KINDS.items():
        assert got[f"my{kind}"] == {"type": kind, **null, **previous}


def test_a_deleted_entity_deletes_its_watched_attributes() -> None:
    before = building(name=[instance("Property")], street=[instance("LanguageProperty")])
    doc = _doc(["attributeDeleted"], watchedAttributes=["name"])
    event = change(before, None)
    assert compile_matcher(doc, CTX.expand_term).concerns(event)
    got = Rendering.of(doc, CTX).change(event, NOW)
    assert got == {"id": "urn:ngsi-ld:Building:1", "type": "Building", "deletedAt": NOW,
                   "name": {"type": "Property", "value": NULL}}
    with_sys = Rendering.of({**doc, "notification": {**doc["notification"], "sysAttrs": True}},
                            CTX).change(event, NOW)
    assert with_sys["name"] == {"type": "Property", "value": NULL, **STAMPS, "deletedAt": NOW}
    unwatched = _doc(["attributeDeleted"], watchedAttributes=["height"])
    assert not compile_matcher(unwatched, CTX.expand_term).concerns(event)


def test_a_deleted_entity_keeps_to_the_selected_attributes() -> None:
    before = building(name=[instance("Property")], street=[instance("LanguageProperty")])
    got = rendering(triggers=["entityDeleted"], showChanges=True, attributes=["name"]).change(
        change(before, None), NOW)
    assert set(got) == {"id", "type", "deletedAt", "name"}


def _doc(triggers: list[str], **members: Any) -> dict[str, Any]:
    return parse_members({"type": "Subscription", "entities": [{"type": "Building"}],
                          "notificationTrigger": triggers, **members,
                          "notification": {"endpoint": {"uri": "http://e.org/n"}}},
                         CTX.expand_term, _now(), partial=False)


DATASETS = st.lists(st.sampled_from([None, "urn:d:1", "urn:d:2", "urn:d:3"]), unique=True,
                    min_size=1)


@given(DATASETS, DATASETS)
def test_removed_instances_are_the_datasets_that_are_gone(before: list[str | None],
                                                          after: list[str | None]) -> None:
    def insts(ids: list[str | None]) -> list[dict[str, Any]]:
        return [{"type": "Property", "value": 1, **({"datasetId": d} if d else {})} for d in ids]

    gone = removed_instances(insts(before), insts(after))
    assert [inst.get("datasetId") for inst in gone] == [d for d in before if d not in after]
