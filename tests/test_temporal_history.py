"""History from writes (ngsi_ld.temporal.history): what each entity operation records.

The states come from the real write operations (ngsi_ld.operations,
ngsi_ld.attribute_ops), as the store commits them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.attribute_ops import delete_attribute, delete_scope
from ngsi_ld.operations import (
    append_attributes,
    create_entity,
    delete_entity,
    merge_entity,
    replace_entity,
    update_attributes,
)
from ngsi_ld.temporal import SCOPE, History, Instance, history_of_write, select, to_micros
from ngsi_ld.temporal.params import TemporalQuery

EID = "urn:ngsi-ld:Lamppost:1"
TYPE = "https://example.org/Lamppost"
PM10 = "https://example.org/pm10"
NAME = "https://example.org/name"
OWNER = "https://example.org/owner"
DS = "urn:ngsi-ld:Dataset:backup"
T0, T1, T2 = "2026-03-01T00:00:00.000Z", "2026-03-01T00:00:10.000Z", "2026-03-01T00:00:20.000Z"


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"urn:ngsi-ld:Instance:{next(counter)}"


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def created(**attrs: list[dict[str, Any]]) -> dict[str, Any]:
    names = {"pm10": PM10, "name": NAME, "owner": OWNER}
    entity = create_entity(
        {"id": EID, "type": [TYPE], "attrs": {names[k]: v for k, v in attrs.items()}}, T0
    )(None)
    assert entity is not None
    return entity


def record(before: dict[str, Any] | None, after: dict[str, Any] | None,
           now: str = T1) -> History:
    history = history_of_write(before, after, now, ids())
    assert history is not None
    return history


def values(history: History) -> list[tuple[str, Any, str | None]]:
    return [(i.attribute, i.value, i.dataset_id) for i in history.instances]


def test_creation_records_every_instance_with_its_stamps() -> None:
    after = created(pm10=[prop(21, observedAt="2026-03-01T00:00:00Z", unitCode="GQ")],
                    owner=[{"type": "Relationship", "object": "urn:ngsi-ld:City:1"}])
    history = record(None, after, T0)
    assert history.entity.entity_id == EID and history.entity.types == (TYPE,)
    assert history.entity.created_at == T0 and history.entity.deleted_at is None
    pm10, owner = history.instances
    assert (pm10.kind, pm10.value, pm10.observed_at) == ("Property", 21, "2026-03-01T00:00:00Z")
    assert pm10.members == {"unitCode": "GQ"}
    assert (pm10.created_at, pm10.modified_at, pm10.deleted_at) == (T0, T0, None)
    assert (owner.kind, owner.value) == ("Relationship", "urn:ngsi-ld:City:1")
    assert pm10.instance_id != owner.instance_id


def test_an_update_records_only_what_it_wrote() -> None:
    before = created(pm10=[prop(21)], name=[prop("north gate")])
    after = update_attributes(EID, {"attrs": {PM10: [prop(22)]}}, T1)(before)
    assert values(record(before, after)) == [(PM10, 22, None)]


def test_writing_the_same_value_again_is_a_new_observation() -> None:
    before = created(pm10=[prop(21)])
    after = update_attributes(EID, {"attrs": {PM10: [prop(21)]}}, T1)(before)
    history = record(before, after)
    assert values(history) == [(PM10, 21, None)]
    assert history.instances[0].modified_at == T1 and history.instances[0].created_at == T0


def test_append_of_a_new_dataset_records_that_instance_only() -> None:
    before = created(pm10=[prop(21)])
    after = append_attributes(EID, {"attrs": {PM10: [prop(30, datasetId=DS)]}}, T1)(before)
    assert values(record(before, after)) == [(PM10, 30, DS)]


def test_a_sub_attribute_change_records_the_whole_instance() -> None:
    before = created(pm10=[prop(21)])
    fragment = {"attrs": {PM10: [{"type": "Property", "value": 21,
                                  "sub": {"https://example.org/accuracy": prop(2)}}]}}
    after = merge_entity(EID, fragment, T1)(before)
    (pm10,) = record(before, after).instances
    assert pm10.members["sub"]["https://example.org/accuracy"]["value"] == 2


def test_deleting_an_attribute_records_deletions_with_the_null_of_its_kind() -> None:
    before = created(name=[{"type": "LanguageProperty", "languageMap": {"en": "gate"}}],
                     owner=[{"type": "Relationship", "object": "urn:ngsi-ld:City:1"}])
    history = record(before, delete_attribute(EID, NAME, T1)(before))
    (name,) = history.instances
    # 4.5.7 and ETSI 020_17: the NGSI-LD Null in the shape of the kind, deletedAt
    assert (name.kind, name.value) == ("LanguageProperty", {"@none": "urn:ngsi-ld:null"})
    # a deletion is found by its deletedAt only: no createdAt, modifiedAt, observedAt
    assert (name.deleted_at, name.modified_at, name.created_at, name.observed_at) == (
        T1, None, None, None)
    history = record(before, delete_attribute(EID, OWNER, T1)(before))
    assert [(i.kind, i.value) for i in history.instances] == [
        ("Relationship", "urn:ngsi-ld:null")]


def test_deleting_one_dataset_leaves_the_others_unrecorded() -> None:
    before = created(pm10=[prop(21), prop(30, datasetId=DS)])
    after = delete_attribute(EID, PM10, T1, dataset_id=DS)(before)
    (deleted,) = record(before, after).instances
    assert (deleted.dataset_id, deleted.is_deletion) == (DS, True)


def test_deleting_the_entity_records_every_instance_and_the_entity_deleted() -> None:
    before = created(pm10=[prop(21), prop(30, datasetId=DS)], name=[prop("gate")])
    history = record(before, delete_entity(EID)(before), T2)
    assert history.entity.deleted_at == T2 and history.entity.modified_at == T2
    assert sorted((i.attribute, i.dataset_id or "") for i in history.instances) == [
        (NAME, ""), (PM10, ""), (PM10, DS)]
    assert all(i.deleted_at == T2 and i.value == "urn:ngsi-ld:null" for i in history.instances)


def test_replace_records_new_attributes_and_deletions_of_the_dropped_ones() -> None:
    before = created(pm10=[prop(21)], name=[prop("gate")])
    after = replace_entity(EID, {"type": [TYPE], "attrs": {PM10: [prop(25)]}}, T1)(before)
    history = record(before, after)
    assert [(i.attribute, i.value, i.is_deletion) for i in history.instances] == [
        (PM10, 25, False), (NAME, "urn:ngsi-ld:null", True)]


def test_scope_changes_are_property_instances_observed_when_modified() -> None:
    # 4.5.6: the Scope's temporal evolution; observedAt is a copy of modifiedAt
    before = created(pm10=[prop(1)])
    after = merge_entity(EID, {"scope": ["/Madrid/Centro"], "attrs": {}}, T1)(before)
    (scope,) = record(before, after).instances
    assert (scope.attribute, scope.kind, scope.value) == (SCOPE, "Property", ["/Madrid/Centro"])
    assert scope.observed_at == scope.modified_at == T1
    removed = record(after, delete_scope(EID, T2)(after), T2).instances
    # ETSI 020_19: a removed scope is recorded with the value []
    assert [(i.value, i.deleted_at) for i in removed] == [([], T2)]


def test_an_empty_write_records_no_instance_but_the_new_modification_time() -> None:
    before = created(pm10=[prop(1)])
    after = merge_entity(EID, {"attrs": {}}, T1)(before)
    history = record(before, after)
    assert history.instances == () and history.entity.modified_at == T1


def test_nothing_before_and_nothing_after_records_nothing() -> None:
    assert history_of_write(None, None, T1, ids()) is None


_VALUE = st.one_of(st.integers(-5, 5), st.booleans(), st.sampled_from(["a", "b"]))


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from([PM10, NAME]), st.sampled_from([None, DS]),
                          st.one_of(st.none(), _VALUE)), min_size=1, max_size=12))
def test_replaying_the_history_gives_the_last_value_of_every_series(
    writes: list[tuple[str, str | None, Any]],
) -> None:
    """Whatever the sequence of writes and deletions, the last record of each series
    says what the entity holds: its value, or a deletion when it has none."""
    new_id = ids()
    entity: dict[str, Any] | None = created(pm10=[prop(0)])
    first = history_of_write(None, entity, T0, new_id)
    assert first is not None
    recorded: list[Instance] = list(first.instances)
    for step, (name, dataset, value) in enumerate(writes):
        now = f"2026-03-01T00:{step // 60:02d}:{step % 60:02d}.000Z"
        assert entity is not None
        has = any(i.get("datasetId") == dataset for i in entity["attrs"].get(name, []))
        if value is None and has:
            after = delete_attribute(EID, name, now, dataset_id=dataset)(entity)
        elif value is None:
            continue
        else:
            instance = prop(value, **({"datasetId": dataset} if dataset else {}))
            after = append_attributes(EID, {"attrs": {name: [instance]}}, now)(entity)
        history = history_of_write(entity, after, now, new_id)
        assert history is not None
        recorded.extend(history.instances)
        entity = after
    assert entity is not None
    last: dict[tuple[str, str | None], Instance] = {}
    for inst in recorded:
        last[inst.series] = inst
    for (name, dataset), inst in last.items():
        held = [i for i in entity["attrs"].get(name, []) if i.get("datasetId") == dataset]
        if inst.is_deletion:
            assert held == []
        else:
            assert held and held[0]["value"] == inst.value
    # every series the entity holds has been recorded
    for name, instances in entity["attrs"].items():
        for inst in instances:
            assert (name, inst.get("datasetId")) in last
    # and instanceIds are never reused
    assert len({i.instance_id for i in recorded}) == len(recorded)


def test_a_transient_attribute_takes_its_expiry_into_its_deletion_record() -> None:
    # 4.22 and ETSI 422_07_02: the history of a transient attribute ends with it
    before = created(pm10=[prop(21, expiresAt="2026-03-01T00:00:05Z")])
    (deleted,) = record(before, delete_attribute(EID, PM10, T1)(before)).instances
    assert deleted.expires_at == "2026-03-01T00:00:05Z"
    recorded = (*record(None, before, T0).instances, deleted)
    created_at, deleted_at = TemporalQuery(timeproperty="createdAt"), TemporalQuery(
        timeproperty="deletedAt")
    before_expiry, at_expiry = to_micros("2026-03-01T00:00:04Z"), to_micros("2026-03-01T00:00:05Z")
    assert [i.value for i in select(recorded, created_at, now=before_expiry)[PM10]] == [21]
    assert len(select(recorded, deleted_at, now=before_expiry)[PM10]) == 1
    assert select(recorded, created_at, now=at_expiry) == {}
    assert select(recorded, deleted_at, now=at_expiry) == {}


def test_deletions_stay_out_of_modification_windows() -> None:
    # ETSI 422_07_03: after an entity expired, a modifiedAt window shows its values only
    before = created(pm10=[prop(7)])
    after = update_attributes(EID, {"attrs": {PM10: [prop(8)]}}, T1)(before)
    recorded = (record(None, before, T0).instances + record(before, after).instances
                + record(after, None, T2).instances)
    window = TemporalQuery("before", to_micros("2030-01-01T00:00:00Z"), timeproperty="modifiedAt")
    assert [i.value for i in select(recorded, window)[PM10]] == [7, 8]


def test_recorded_instances_are_found_by_a_modifiedAt_window() -> None:
    before = created(pm10=[prop(21)])
    after = update_attributes(EID, {"attrs": {PM10: [prop(22)]}}, T1)(before)
    recorded = record(None, before, T0).instances + record(before, after).instances
    query = TemporalQuery("after", 1772323205000000, timeproperty="modifiedAt")  # 00:00:05
    assert [i.value for i in select(recorded, query)[PM10]] == [22]
