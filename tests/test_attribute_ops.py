"""Single-attribute operations (ngsi_ld.attribute_ops): clauses 5.6.4, 5.6.5, 5.6.19."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ngsi_ld.errors import BadRequestData, ResourceNotFound
from ngsi_ld.operations import (
    DELETE,
    create_entity,
    delete_attribute,
    replace_attribute,
    update_attribute,
)

EID = "urn:ngsi-ld:Sensor:1"
TEMP = "https://example.org/temperature"
HUM = "https://example.org/humidity"
ACC = "https://example.org/accuracy"
SRC = "https://example.org/source"
T0, T1 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"
DS = "urn:ngsi-ld:Dataset:1"


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


@pytest.fixture
def entity() -> dict[str, Any]:
    attrs = {
        TEMP: [
            prop(20, unitCode="CEL", sub={ACC: prop(0.5), SRC: prop("x")}),
            prop(30, datasetId=DS),
        ],
        HUM: [prop(50)],
    }
    new = create_entity({"id": EID, "type": ["https://example.org/S"], "attrs": attrs}, T0)(None)
    assert new is not None
    return new


# -- 5.6.4 partial attribute update -------------------------------------------------------


def test_partial_update_merges_members(entity: dict[str, Any]) -> None:
    new = update_attribute(EID, TEMP, {"value": 21, "sub": {ACC: prop(0.2)}}, T1)(entity)
    assert new is not None
    inst = new["attrs"][TEMP][0]
    assert (inst["value"], inst["unitCode"]) == (21, "CEL")
    assert inst["sub"][ACC]["value"] == 0.2 and inst["sub"][ACC]["modifiedAt"] == T1
    assert inst["sub"][SRC]["modifiedAt"] == T0  # untouched sub-attribute keeps its stamp
    assert (inst["createdAt"], inst["modifiedAt"], new["modifiedAt"]) == (T0, T1, T1)
    assert new["attrs"][TEMP][1] == entity["attrs"][TEMP][1]


def test_partial_update_selects_instance_by_dataset_id(entity: dict[str, Any]) -> None:
    new = update_attribute(EID, TEMP, {"value": 31, "datasetId": DS}, T1)(entity)
    assert new is not None
    assert [i["value"] for i in new["attrs"][TEMP]] == [20, 31]


def test_partial_update_deletes_sub_attribute_and_member(entity: dict[str, Any]) -> None:
    fragment = {"unitCode": DELETE, "sub": {ACC: prop(DELETE)}}
    new = update_attribute(EID, TEMP, fragment, T1)(entity)
    assert new is not None
    inst = new["attrs"][TEMP][0]
    assert "unitCode" not in inst and set(inst["sub"]) == {SRC}


def test_partial_update_errors(entity: dict[str, Any]) -> None:
    with pytest.raises(ResourceNotFound, match=re.escape("https://example.org/nope")):
        update_attribute(EID, "https://example.org/nope", {"value": 1}, T1)(entity)
    with pytest.raises(ResourceNotFound, match="urn:ds:other"):
        update_attribute(EID, TEMP, {"value": 1, "datasetId": "urn:ds:other"}, T1)(entity)
    with pytest.raises(ResourceNotFound, match=EID):
        update_attribute(EID, TEMP, {"value": 1}, T1)(None)
    with pytest.raises(BadRequestData):
        update_attribute(EID, TEMP, "not an object", T1)  # type: ignore[arg-type]
    with pytest.raises(BadRequestData, match="Relationship"):  # 5.6.4.4: no type change
        update_attribute(EID, TEMP, {"type": "Relationship", "object": "urn:a:b"}, T1)(entity)


def test_partial_update_with_the_null_deletes_the_instance(entity: dict[str, Any]) -> None:
    # 5.5.8: the main member set to the NGSI-LD Null deletes the target instance
    new = update_attribute(EID, TEMP, prop(DELETE), T1)(entity)
    assert new is not None and [i.get("datasetId") for i in new["attrs"][TEMP]] == [DS]
    assert new["modifiedAt"] == T1
    new = update_attribute(EID, HUM, prop(DELETE), T1)(entity)
    assert new is not None and HUM not in new["attrs"]


def test_partial_update_fragment_without_type_keeps_the_kind(entity: dict[str, Any]) -> None:
    # 5.6.4: an Attribute Fragment may give only sub-attributes or members
    new = update_attribute(EID, TEMP, {"unitCode": "FAH"}, T1)(entity)
    assert new is not None
    inst = new["attrs"][TEMP][0]
    assert inst["type"] == "Property" and inst["unitCode"] == "FAH" and inst["value"] == 20


# -- 5.6.19 replace attribute --------------------------------------------------------------


def test_replace_attribute_replaces_whole_instance(entity: dict[str, Any]) -> None:
    new = replace_attribute(EID, TEMP, prop(25), T1)(entity)
    assert new is not None
    inst = new["attrs"][TEMP][0]
    assert inst == {"type": "Property", "value": 25, "createdAt": T0, "modifiedAt": T1}


def test_replace_attribute_errors(entity: dict[str, Any]) -> None:
    with pytest.raises(ResourceNotFound):
        replace_attribute(EID, "https://example.org/nope", prop(1), T1)(entity)
    with pytest.raises(ResourceNotFound):
        replace_attribute(EID, HUM, prop(1, datasetId=DS), T1)(entity)
    with pytest.raises(BadRequestData):
        replace_attribute(EID, TEMP, prop(DELETE), T1)


# -- 5.6.5 delete attribute ----------------------------------------------------------------


def test_delete_default_instance(entity: dict[str, Any]) -> None:
    new = delete_attribute(EID, TEMP, T1)(entity)
    assert new is not None
    assert [i.get("datasetId") for i in new["attrs"][TEMP]] == [DS]
    assert new["modifiedAt"] == T1


def test_delete_dataset_instance_and_all(entity: dict[str, Any]) -> None:
    new = delete_attribute(EID, TEMP, T1, dataset_id=DS)(entity)
    assert new is not None and [i["value"] for i in new["attrs"][TEMP]] == [20]
    new = delete_attribute(EID, TEMP, T1, delete_all=True)(entity)
    assert new is not None and set(new["attrs"]) == {HUM}
    new = delete_attribute(EID, HUM, T1)(entity)
    assert new is not None and HUM not in new["attrs"]


def test_delete_attribute_errors(entity: dict[str, Any]) -> None:
    with pytest.raises(ResourceNotFound):
        delete_attribute(EID, "https://example.org/nope", T1)(entity)
    with pytest.raises(ResourceNotFound):
        delete_attribute(EID, "https://example.org/nope", T1, delete_all=True)(entity)
    with pytest.raises(ResourceNotFound, match="urn:ds:x"):
        delete_attribute(EID, TEMP, T1, dataset_id="urn:ds:x")(entity)
    with pytest.raises(ResourceNotFound, match=EID):
        delete_attribute(EID, TEMP, T1)(None)
