"""Entity write semantics (ngsi_ld.operations): clause 5.6 create/update/append/merge/replace."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.attribute_ops import delete_scope
from ngsi_ld.errors import AlreadyExists, BadRequestData, NgsiLdError, ResourceNotFound
from ngsi_ld.instances import require_entity, touch
from ngsi_ld.model import KEEPS_CURRENT
from ngsi_ld.operations import (
    DELETE,
    UpdateResult,
    append_attributes,
    apply_update,
    create_entity,
    delete_attribute,
    delete_entity,
    merge_entity,
    replace_attribute,
    replace_entity,
    update_attribute,
    update_attributes,
)

EID = "urn:ngsi-ld:Sensor:1"
SENSOR = "https://example.org/Sensor"
DEVICE = "https://example.org/Device"
TEMP = "https://example.org/temperature"
HUM = "https://example.org/humidity"
ACC = "https://example.org/accuracy"
T0, T1, T2 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def sensor(**attrs: list[dict[str, Any]]) -> dict[str, Any]:
    names = {"temp": TEMP, "hum": HUM}
    return {"id": EID, "type": [SENSOR], "attrs": {names[k]: v for k, v in attrs.items()}}


def created(**attrs: list[dict[str, Any]]) -> dict[str, Any]:
    entity = create_entity(sensor(**attrs), T0)(None)
    assert entity is not None
    return entity


# -- 5.6.1 create -----------------------------------------------------------------------


def test_create_stamps_entity_instances_and_sub_attributes() -> None:
    entity = created(temp=[prop(20, sub={ACC: prop(0.5)})])
    assert entity["createdAt"] == entity["modifiedAt"] == T0
    inst = entity["attrs"][TEMP][0]
    assert (inst["createdAt"], inst["modifiedAt"]) == (T0, T0)
    assert inst["sub"][ACC]["createdAt"] == T0
    assert inst["value"] == 20


def test_create_existing_raises_already_exists_naming_the_id() -> None:
    with pytest.raises(AlreadyExists, match=EID):
        create_entity(sensor(), T1)(created())


def test_create_does_not_modify_its_input() -> None:
    new = sensor(temp=[prop(1)])
    before = copy.deepcopy(new)
    create_entity(new, T0)(None)
    assert new == before


def test_create_rejects_ngsi_ld_null_and_missing_id() -> None:
    with pytest.raises(BadRequestData, match=TEMP):
        create_entity(sensor(temp=[prop(DELETE)]), T0)
    with pytest.raises(BadRequestData, match="id"):
        create_entity({"type": [SENSOR], "attrs": {}}, T0)


# -- 5.6.2 update -----------------------------------------------------------------------


def test_update_replaces_existing_and_appends_the_others() -> None:
    # 5.6.2.4 (v1.9.1): existing instances replaced whole, missing ones appended
    current = created(temp=[prop(20, unitCode="CEL")])
    mutation = update_attributes(EID, sensor(temp=[prop(21)], hum=[prop(50)]), T1)
    new = mutation(current)
    assert new is not None
    inst = new["attrs"][TEMP][0]
    assert inst["value"] == 21 and "unitCode" not in inst
    assert (inst["createdAt"], inst["modifiedAt"]) == (T0, T1)
    assert new["attrs"][HUM][0]["value"] == 50
    assert new["attrs"][HUM][0]["createdAt"] == T1
    assert new["modifiedAt"] == T1
    assert mutation.result.updated == [TEMP, HUM]
    assert mutation.result.not_updated == []


def test_update_reports_a_null_for_a_missing_instance() -> None:
    current = created(temp=[prop(20)])
    mutation = update_attributes(EID, sensor(hum=[prop(DELETE)]), T1)
    assert mutation(current) == current
    assert [n.attr for n in mutation.result.not_updated] == [HUM]
    assert mutation.result.to_dict()["notUpdated"][0]["attributeName"] == HUM


def test_update_matches_instances_by_dataset_id() -> None:
    current = created(temp=[prop(20), prop(30, datasetId="urn:ds:1")])
    mutation = update_attributes(EID, sensor(temp=[prop(31, datasetId="urn:ds:2")]), T1)
    new = mutation(current)
    assert new is not None
    assert [i.get("datasetId") for i in new["attrs"][TEMP]] == [None, "urn:ds:1", "urn:ds:2"]
    mutation = update_attributes(EID, sensor(temp=[prop(31, datasetId="urn:ds:1")]), T1)
    new = mutation(current)
    assert new is not None
    assert [i["value"] for i in new["attrs"][TEMP]] == [20, 31]


def test_update_adds_the_fragment_types() -> None:
    # 5.6.2.4: types of the fragment not yet in the entity are added (4.16)
    new = update_attributes(EID, {"type": ["https://example.org/Car"], "attrs": {}}, T1)(
        created(temp=[prop(20)])
    )
    assert new is not None and new["type"] == [SENSOR, "https://example.org/Car"]


def test_update_with_null_deletes_the_instance() -> None:
    current = created(temp=[prop(20)], hum=[prop(50)])
    new = update_attributes(EID, sensor(temp=[prop(DELETE)]), T1)(current)
    assert new is not None and set(new["attrs"]) == {HUM}


def test_update_missing_entity_raises_not_found() -> None:
    with pytest.raises(ResourceNotFound, match=EID):
        update_attributes(EID, sensor(temp=[prop(1)]), T1)(None)


def test_update_result_is_reset_on_each_call() -> None:
    mutation = update_attributes(EID, sensor(temp=[prop(1)], hum=[prop(2)]), T1)
    mutation(created(temp=[prop(0)]))
    mutation(created(temp=[prop(0)], hum=[prop(0)]))
    assert mutation.result.not_updated == []
    assert sorted(mutation.result.updated) == sorted([TEMP, HUM])


# -- 5.6.3 append ------------------------------------------------------------------------


def test_append_adds_new_and_replaces_existing() -> None:
    current = created(temp=[prop(20)])
    mutation = append_attributes(EID, sensor(temp=[prop(21)], hum=[prop(50)]), T1)
    new = mutation(current)
    assert new is not None
    assert new["attrs"][TEMP][0]["value"] == 21
    assert new["attrs"][TEMP][0]["createdAt"] == T0
    assert new["attrs"][HUM][0]["createdAt"] == T1
    assert sorted(mutation.result.updated) == sorted([TEMP, HUM])


def test_append_no_overwrite_keeps_existing_and_reports_them() -> None:
    current = created(temp=[prop(20)])
    mutation = append_attributes(
        EID, sensor(temp=[prop(21)], hum=[prop(50)]), T1, no_overwrite=True
    )
    new = mutation(current)
    assert new is not None
    assert new["attrs"][TEMP] == current["attrs"][TEMP]
    assert new["attrs"][HUM][0]["value"] == 50
    assert [n.attr for n in mutation.result.not_updated] == [TEMP]


def test_append_adds_new_dataset_instance_and_types() -> None:
    current = created(temp=[prop(20)])
    fragment = sensor(temp=[prop(9, datasetId="urn:ds:1")])
    fragment["type"] = [DEVICE]
    new = append_attributes(EID, fragment, T1)(current)
    assert new is not None
    assert new["type"] == [SENSOR, DEVICE]
    assert [i.get("datasetId") for i in new["attrs"][TEMP]] == [None, "urn:ds:1"]


def test_append_errors() -> None:
    with pytest.raises(ResourceNotFound):
        append_attributes(EID, sensor(temp=[prop(1)]), T1)(None)
    with pytest.raises(BadRequestData):
        append_attributes(EID, sensor(temp=[prop(DELETE)]), T1)


# -- 5.6.6 delete entity -----------------------------------------------------------------


def test_delete_entity() -> None:
    assert delete_entity(EID)(created()) is None
    with pytest.raises(ResourceNotFound, match=EID):
        delete_entity(EID)(None)


# -- 5.6.17 merge ------------------------------------------------------------------------


def test_merge_merges_members_and_sub_attributes() -> None:
    current = created(temp=[prop(20, unitCode="CEL", sub={ACC: prop(0.5, unitCode="X")})])
    patch = sensor(temp=[{"value": 22, "sub": {ACC: {"value": 0.1}}}], hum=[prop(40)])
    new = merge_entity(EID, patch, T1)(current)
    assert new is not None
    inst = new["attrs"][TEMP][0]
    assert (inst["value"], inst["unitCode"], inst["type"]) == (22, "CEL", "Property")
    assert inst["sub"][ACC]["value"] == 0.1 and inst["sub"][ACC]["unitCode"] == "X"
    assert (inst["createdAt"], inst["modifiedAt"]) == (T0, T1)
    assert new["attrs"][HUM][0]["value"] == 40


def test_merge_null_deletes_attribute_member_sub_attribute_and_scope() -> None:
    current = created(temp=[prop(20, unitCode="CEL", sub={ACC: prop(1)})], hum=[prop(50)])
    current["scope"] = ["/a"]
    patch = sensor(temp=[{"unitCode": DELETE, "sub": {ACC: prop(DELETE)}}], hum=[prop(DELETE)])
    patch["scope"] = DELETE
    new = merge_entity(EID, patch, T1)(current)
    assert new is not None
    assert set(new["attrs"]) == {TEMP} and "scope" not in new
    assert new["attrs"][TEMP][0] == {
        "type": "Property",
        "value": 20,
        "createdAt": T0,
        "modifiedAt": T1,
    }


def test_merge_adds_an_attribute_of_a_dataset_with_its_dataset_id() -> None:
    """5.6.17.4: an Attribute the entity lacks (or an instance of a datasetId it lacks)
    is added with its datasetId; it was added as the default instance (found by
    tests/test_store_agreement.py reading an entity after a merge)."""
    current = created(temp=[prop(20)])
    patch = sensor(temp=[prop(21, datasetId="urn:ngsi-ld:Dataset:1")],
                   hum=[prop(40, datasetId="urn:ngsi-ld:Dataset:2")])
    new = merge_entity(EID, patch, T1)(current)
    assert new is not None
    assert [(i["value"], i.get("datasetId")) for i in new["attrs"][TEMP]] == [
        (20, None), (21, "urn:ngsi-ld:Dataset:1")]
    assert [(i["value"], i.get("datasetId")) for i in new["attrs"][HUM]] == [
        (40, "urn:ngsi-ld:Dataset:2")]


def test_merge_kind_change_drops_old_main_member() -> None:
    current = created(temp=[prop(20)])
    patch = sensor(temp=[{"type": "Relationship", "object": "urn:ngsi-ld:X:1"}])
    new = merge_entity(EID, patch, T1)(current)
    assert new is not None
    inst = new["attrs"][TEMP][0]
    assert "value" not in inst and inst["object"] == "urn:ngsi-ld:X:1"


def test_merge_adds_types_and_replaces_scope() -> None:
    current = created()
    current["scope"] = ["/a"]
    patch = {"id": EID, "type": [DEVICE], "scope": ["/b"], "attrs": {}}
    new = merge_entity(EID, patch, T1)(current)
    assert new is not None
    assert new["type"] == [SENSOR, DEVICE] and new["scope"] == ["/b"]


def test_merge_missing_entity() -> None:
    with pytest.raises(ResourceNotFound):
        merge_entity(EID, sensor(), T1)(None)


# -- 5.6.18 replace entity ----------------------------------------------------------------


def test_replace_entity_replaces_everything_but_created_at() -> None:
    current = created(temp=[prop(20)], hum=[prop(50)])
    current["scope"] = ["/a"]
    replacement = sensor(hum=[prop(60)])
    replacement["type"] = [DEVICE]
    new = replace_entity(EID, replacement, T1)(current)
    assert new is not None
    assert set(new["attrs"]) == {HUM} and new["type"] == [DEVICE] and "scope" not in new
    assert (new["createdAt"], new["modifiedAt"]) == (T0, T1)
    assert new["attrs"][HUM][0]["value"] == 60


def test_replace_entity_errors() -> None:
    with pytest.raises(BadRequestData, match="urn:ngsi-ld:Other"):
        replace_entity(EID, {"id": "urn:ngsi-ld:Other", "attrs": {}}, T1)
    with pytest.raises(ResourceNotFound):
        replace_entity(EID, sensor(), T1)(None)


# -- properties ---------------------------------------------------------------------------

values = st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.floats(allow_nan=False))
names = st.sampled_from([TEMP, HUM, "https://example.org/a", "https://example.org/b"])
attr_dicts = st.dictionaries(names, values.map(lambda v: [prop(v)]), max_size=4)


def _entity(attrs: dict[str, Any]) -> dict[str, Any]:
    entity = create_entity({"id": EID, "type": [SENSOR], "attrs": attrs}, T0)(None)
    assert entity is not None
    return entity


@given(attr_dicts, values)
def test_append_then_delete_gives_back_the_attributes(attrs: dict[str, Any], v: Any) -> None:
    current = _entity(attrs)
    new_name = "https://example.org/new"
    appended = append_attributes(EID, {"attrs": {new_name: [prop(v)]}}, T1)(current)
    back = delete_attribute(EID, new_name, T2)(appended)
    assert back is not None and back["attrs"] == current["attrs"]


@given(attr_dicts)
def test_empty_merge_changes_nothing_but_modified_at(attrs: dict[str, Any]) -> None:
    current = _entity(attrs)
    new = merge_entity(EID, {"attrs": {}}, T1)(current)
    assert new is not None and new["modifiedAt"] == T1
    assert {**new, "modifiedAt": T0} == current


@given(attr_dicts, attr_dicts)
def test_update_writes_every_attribute(attrs: dict[str, Any], patch: dict[str, Any]) -> None:
    current = _entity(attrs)
    mutation = update_attributes(EID, {"attrs": patch}, T1)
    new = mutation(current)
    assert new is not None and set(new["attrs"]) == set(current["attrs"]) | set(patch)
    assert set(mutation.result.updated) == set(patch)


@given(attr_dicts, attr_dicts, st.sampled_from(["update", "append", "merge", "replace"]))
def test_created_at_never_changes(attrs: dict[str, Any], patch: dict[str, Any], op: str) -> None:
    current = _entity(attrs)
    fragment = {"id": EID, "attrs": patch}
    builders: dict[str, Callable[[], Callable[[Any], Any]]] = {
        "update": lambda: update_attributes(EID, fragment, T1),
        "append": lambda: append_attributes(EID, fragment, T1),
        "merge": lambda: merge_entity(EID, fragment, T1),
        "replace": lambda: replace_entity(EID, fragment, T1),
    }
    new = builders[op]()(current)
    assert new is not None and new["createdAt"] == T0
    for name, instances in new["attrs"].items():
        expected = T0 if name in attrs else T1
        assert all(inst["createdAt"] == expected for inst in instances)


@given(attr_dicts, attr_dicts)
def test_operations_never_modify_the_current_entity(
    attrs: dict[str, Any], patch: dict[str, Any]
) -> None:
    current = _entity(attrs)
    snapshot = copy.deepcopy(current)
    fragment = {"id": EID, "attrs": patch}
    for mutation in (
        update_attributes(EID, fragment, T1),
        append_attributes(EID, fragment, T1),
        merge_entity(EID, fragment, T1),
        replace_entity(EID, fragment, T1),
    ):
        mutation(current)
        assert current == snapshot


# Instances of several datasetIds, NGSI-LD Nulls, types, scope and expiresAt: what the
# attribute writes copy (writable_entity) against what a whole private copy gives.
dataset_ids = st.sampled_from([None, "urn:ngsi-ld:Dataset:a", "urn:ngsi-ld:Dataset:b"])
instances = st.builds(lambda v, d, sub: {**prop(v), **({"datasetId": d} if d else {}),
                                         **({"sub": {ACC: prop(sub)}} if sub is not None else {})},
                      values, dataset_ids, st.none() | values)
stored_attrs = st.dictionaries(names, st.lists(instances, min_size=1, max_size=3)
                               .map(lambda xs: list({x.get("datasetId"): x for x in xs}.values())),
                               max_size=4)
fragment_instances = st.one_of(instances, dataset_ids.map(
    lambda d: {"type": "Property", "value": DELETE, **({"datasetId": d} if d else {})}))
fragments = st.builds(
    lambda attrs, types, scope, expires: {
        "attrs": attrs, **({"type": types} if types else {}),
        **({"scope": scope} if scope else {}), **({"expiresAt": expires} if expires else {})},
    st.dictionaries(names, st.lists(fragment_instances, min_size=1, max_size=2), max_size=3),
    st.lists(st.sampled_from([SENSOR, DEVICE]), max_size=2),
    st.lists(st.sampled_from(["/a", "/b"]), max_size=2),
    st.sampled_from([None, T2, DELETE]))


def _stored(attrs: dict[str, Any], scoped: bool) -> dict[str, Any]:
    entity = create_entity({"id": EID, "type": [SENSOR], "attrs": attrs,
                            **({"scope": ["/a"]} if scoped else {})}, T0)(None)
    assert entity is not None
    return entity


def _outcome(mutation: Callable[[Any], Any], current: Any) -> Any:
    try:
        return mutation(current)
    except NgsiLdError as exc:
        return type(exc), str(exc)


@given(stored_attrs, st.booleans(), fragments, names, instances, dataset_ids)
def test_attribute_writes_equal_a_write_of_a_private_copy_and_keep_current(
    attrs: dict[str, Any], scoped: bool, fragment: dict[str, Any], name: str,
    instance: dict[str, Any], dataset_id: str | None,
) -> None:
    current = _stored(attrs, scoped)
    snapshot = copy.deepcopy(current)
    for build in (
        lambda: update_attributes(EID, fragment, T1),
        lambda: append_attributes(EID, {**fragment, "attrs": {
            n: [i for i in xs if i["value"] != DELETE] for n, xs in fragment["attrs"].items()},
            **({"expiresAt": T2} if "expiresAt" in fragment else {})}, T1),
        lambda: update_attribute(EID, name, instance, T1),
        lambda: update_attribute(EID, name, {"value": DELETE, **(
            {"datasetId": dataset_id} if dataset_id else {})}, T1),
        lambda: replace_attribute(EID, name, instance, T1),
        lambda: delete_attribute(EID, name, T1, dataset_id=dataset_id),
        lambda: delete_attribute(EID, name, T1, delete_all=True),
        lambda: delete_scope(EID, T1),
    ):
        mutation = build()
        assert getattr(mutation, KEEPS_CURRENT, False)
        written = _outcome(mutation, current)
        assert current == snapshot  # never changed: a store may pass the entity it keeps
        assert written == _outcome(build(), copy.deepcopy(current))
    # the general way of 5.6.2: the fragment applied to a whole private copy
    whole = require_entity(current, EID)
    result = UpdateResult()
    expected = touch(whole, T1) if apply_update(whole, fragment, T1, result) else current
    mutation = update_attributes(EID, fragment, T1)
    assert mutation(current) == expected and mutation.result == result


def test_create_called_again_gives_an_equal_but_separate_entity() -> None:
    mutation = create_entity(sensor(temp=[prop(1)]), T0)
    first, second = mutation(None), mutation(None)
    assert first == second and first is not second
    assert first is not None and second is not None
    first["attrs"][TEMP][0]["value"] = 99
    assert second["attrs"][TEMP][0]["value"] == 1


def test_replace_without_types_keeps_a_copy_of_the_current_types() -> None:
    current = created(temp=[prop(1)])
    replaced = replace_entity(EID, {"attrs": {HUM: [prop(2)]}}, T1)(current)
    assert replaced is not None and replaced["type"] == current["type"]
    replaced["type"].append(DEVICE)
    assert current["type"] == [SENSOR]


# The usual PATCH of 5.6.2 (one attribute, one instance without datasetId, scalar
# members) is written without the general steps: the same entity and UpdateResult as
# the fragment applied to a whole private copy, for entities of every shape around it.
scalars = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=4),
                    st.booleans(), st.floats(allow_nan=False), st.none())
members = st.dictionaries(st.sampled_from(["unitCode", "observedAt", "object", "languageMap",
                                           "datasetId", "createdAt", "sub"]),
                          st.one_of(scalars, st.just({ACC: prop(1)}), st.just([1, 2]),
                                    st.just(DELETE)), max_size=2)
usual_instances = st.builds(
    lambda kind, value, extra: {"type": kind, "value": value, **extra},
    st.sampled_from(["Property", "Relationship", "LanguageProperty", "VocabProperty"]),
    st.one_of(scalars, scalars, st.just(DELETE), st.just({"a": 1}), st.just([1])),
    st.one_of(st.just({}), st.dictionaries(st.sampled_from(["unitCode", "observedAt"]), scalars),
              members))
plain_instances = st.builds(
    lambda v, created: {"type": "Property", "value": v,
                        **({"createdAt": T0, "modifiedAt": T0} if created else {})},
    values, st.booleans())
stored_instances = st.one_of(instances, st.just({}), plain_instances)
stored_types = st.sampled_from([[SENSOR], [SENSOR, DEVICE], SENSOR, None])


@given(st.dictionaries(names, st.lists(stored_instances, min_size=0, max_size=2), max_size=3),
       st.one_of(st.none(), plain_instances.map(lambda i: [i]),
                 st.lists(stored_instances, max_size=2)),
       stored_types, names, usual_instances, st.booleans())
def test_the_usual_update_equals_the_general_one(
    attrs: dict[str, Any], own: list[dict[str, Any]] | None, types: Any, name: str,
    instance: dict[str, Any], bare: bool,
) -> None:
    if own is not None:  # the attribute written, as the entity has it
        attrs = {**attrs, name: own}
    current: dict[str, Any] = {"id": EID, **({"type": types} if types is not None else {}),
                               "createdAt": T0, "modifiedAt": T0,
                               **({} if bare and not attrs else {"attrs": attrs})}
    snapshot = copy.deepcopy(current)
    fragment = {"attrs": {name: [instance]}}
    fragment_copy = copy.deepcopy(fragment)
    whole = copy.deepcopy(current)
    result = UpdateResult()
    expected = touch(whole, T1) if apply_update(whole, copy.deepcopy(fragment), T1, result) \
        else current
    mutation = update_attributes(EID, fragment, T1)
    written = mutation(current)
    assert written == expected and mutation.result == result
    assert current == snapshot and fragment == fragment_copy
    # the written instance is the write's own: editing it leaves the fragment as it was
    kept = [id(i) for xs in (current.get("attrs") or {}).values() for i in xs]
    for inst in (written or {}).get("attrs", {}).get(name, []):
        if id(inst) not in kept:  # written, not an instance of current's shared
            for member in inst.values():  # nothing in it shared with the fragment either
                if isinstance(member, dict | list):
                    member.clear()
            inst["value"] = "edited"
    assert fragment == fragment_copy and current == snapshot
    # called again (a retry of the write), the same outcome
    assert mutation(current) == expected


def test_the_usual_update_keeps_the_created_at_and_the_other_attributes() -> None:
    current = created(temp=[prop(1, unitCode="CEL")], hum=[prop(50)])
    new = update_attributes(EID, {"attrs": {TEMP: [prop(2)]}}, T1)(current)
    assert new is not None
    assert new["attrs"][TEMP] == [{**prop(2), "createdAt": T0, "modifiedAt": T1}]
    assert new["attrs"][HUM] is current["attrs"][HUM]
    assert new["modifiedAt"] == T1 and new["createdAt"] == T0
