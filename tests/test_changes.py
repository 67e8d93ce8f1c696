"""Change events (ngsi_ld.changes) computed from the states operations produce."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.changes import ChangeEvent, diff
from ngsi_ld.operations import (
    DELETE,
    append_attributes,
    create_entity,
    delete_attribute,
    delete_entity,
    merge_entity,
    update_attribute,
    update_attributes,
)

EID = "urn:ngsi-ld:Sensor:1"
TEMP = "https://example.org/temperature"
HUM = "https://example.org/humidity"
ACC = "https://example.org/accuracy"
T0, T1 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"
DS = "urn:ngsi-ld:Dataset:1"


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def stored(**attrs: list[dict[str, Any]]) -> dict[str, Any]:
    names = {"temp": TEMP, "hum": HUM}
    new = {
        "id": EID,
        "type": ["https://example.org/S"],
        "attrs": {names[k]: v for k, v in attrs.items()},
    }
    entity = create_entity(new, T0)(None)
    assert entity is not None
    return entity


def event(before: dict[str, Any] | None, after: dict[str, Any] | None) -> ChangeEvent:
    change = diff("t1", before, after)
    assert change is not None
    return change


def test_creation_reports_every_attribute_created() -> None:
    after = stored(temp=[prop(1)], hum=[prop(2)])
    change = event(None, after)
    assert (change.tenant, change.entity_id, change.trigger) == ("t1", EID, "entityCreated")
    assert change.attributes == {TEMP: "attributeCreated", HUM: "attributeCreated"}
    assert change.before is None and change.after is after


def test_deletion_reports_every_attribute_deleted() -> None:
    before = stored(temp=[prop(1)])
    change = event(before, delete_entity(EID)(before))
    assert change.trigger == "entityDeleted" and change.attributes == {TEMP: "attributeDeleted"}


def test_update_append_and_delete_attribute() -> None:
    before = stored(temp=[prop(1)], hum=[prop(2)])
    after = append_attributes(EID, {"attrs": {TEMP: [prop(5)], ACC: [prop(0)]}}, T1)(before)
    change = event(before, after)
    assert change.trigger == "entityUpdated"
    assert change.attributes == {TEMP: "attributeUpdated", ACC: "attributeCreated"}
    change = event(before, delete_attribute(EID, HUM, T1)(before))
    assert change.attributes == {HUM: "attributeDeleted"}


def test_writing_the_same_value_is_an_update() -> None:
    before = stored(temp=[prop(1)])
    after = update_attributes(EID, {"attrs": {TEMP: [prop(1)]}}, T1)(before)
    assert event(before, after).attributes == {TEMP: "attributeUpdated"}


def test_new_dataset_instance_updates_the_attribute() -> None:
    before = stored(temp=[prop(1)])
    after = append_attributes(EID, {"attrs": {TEMP: [prop(2, datasetId=DS)]}}, T1)(before)
    assert event(before, after).attributes == {TEMP: "attributeUpdated"}


def test_sub_attribute_change_updates_the_attribute() -> None:
    before = stored(temp=[prop(1)])
    after = update_attribute(EID, TEMP, {"sub": {ACC: prop(3)}}, T1)(before)
    assert event(before, after).attributes == {TEMP: "attributeUpdated"}


def test_type_or_scope_change_alone_is_an_entity_update() -> None:
    before = stored()
    after = merge_entity(EID, {"type": ["https://example.org/D"], "scope": ["/a"]}, T1)(before)
    change = event(before, after)
    assert change.trigger == "entityUpdated" and change.attributes == {}


def test_no_change_gives_none() -> None:
    before = stored(temp=[prop(1)])
    assert diff("", before, before) is None
    assert diff("", None, None) is None
    assert diff("", before, merge_entity(EID, {"attrs": {}}, T1)(before)) is None
    unchanged = update_attributes(EID, {"attrs": {HUM: [prop(DELETE)]}}, T1)(before)
    assert diff("", before, unchanged) is None


def test_merge_delete_reports_attribute_deleted() -> None:
    before = stored(temp=[prop(1)], hum=[prop(2)])
    after = merge_entity(EID, {"attrs": {HUM: [prop(DELETE)]}}, T1)(before)
    assert event(before, after).attributes == {HUM: "attributeDeleted"}


names = st.sampled_from([TEMP, HUM, ACC])
attr_dicts = st.dictionaries(names, st.integers().map(lambda v: [prop(v)]), max_size=3)


@given(attr_dicts, attr_dicts)
def test_reported_attributes_are_exactly_those_that_differ(
    old: dict[str, Any], patch: dict[str, Any]
) -> None:
    before = create_entity({"id": EID, "type": ["https://example.org/S"], "attrs": old}, T0)(None)
    after = merge_entity(EID, {"attrs": patch}, T1)(before)
    change = diff("", before, after)
    if not patch:
        assert change is None
        return
    assert change is not None
    assert set(change.attributes) == set(patch)
    for name, trigger in change.attributes.items():
        assert trigger == ("attributeUpdated" if name in old else "attributeCreated")


def test_instances_in_another_order_are_no_update() -> None:
    one, two = prop(1, datasetId=DS), prop(2)
    before = stored(temp=[one, two])
    after = {**before, "attrs": {TEMP: list(reversed(before["attrs"][TEMP]))}}
    assert diff("t1", before, after) is None
    after["attrs"][TEMP][0] = {**after["attrs"][TEMP][0], "value": 3}
    assert event(before, after).attributes == {TEMP: "attributeUpdated"}


def test_one_instance_each_is_updated_when_anything_in_it_differs() -> None:
    before = stored(temp=[prop(1)])
    (stamped,) = before["attrs"][TEMP]
    for changed in ({**stamped, "datasetId": DS}, {**stamped, "value": 2},
                    {**stamped, "modifiedAt": "2026-01-02T00:00:00.000Z"}):
        after = {**before, "attrs": {TEMP: [changed]}}
        assert event(before, after).attributes == {TEMP: "attributeUpdated"}
    assert diff("t1", before, {**before, "attrs": {TEMP: [dict(stamped)]}}) is None
