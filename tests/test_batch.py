"""Batch operations (ngsi_ld.batch): clauses 5.6.7-5.6.10 and 5.6.20."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.batch import (
    batch_create_mutation,
    batch_delete_mutation,
    batch_merge_mutation,
    batch_update_mutation,
    batch_upsert_mutation,
    check_batch,
    check_items,
)
from ngsi_ld.errors import AlreadyExists, BadRequestData, InvalidRequest, ResourceNotFound
from ngsi_ld.operations import DELETE, AttrsMutation

TEMP = "https://example.org/temperature"
HUM = "https://example.org/humidity"
SENSOR, DEVICE = "https://example.org/Sensor", "https://example.org/Device"
T0, T1 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def ent(n: int, types: list[str] | None = None, **attrs: Any) -> dict[str, Any]:
    names = {"temp": TEMP, "hum": HUM}
    return {
        "id": f"urn:ngsi-ld:S:{n}",
        "type": types or [SENSOR],
        "attrs": {names[k]: [prop(v)] for k, v in attrs.items()},
    }


def stored(n: int, **attrs: Any) -> dict[str, Any]:
    entity = batch_create_mutation(ent(n, **attrs), T0)(None)
    assert entity is not None
    return entity


def test_batch_create() -> None:
    assert stored(1, temp=1)["createdAt"] == T0
    with pytest.raises(AlreadyExists, match="urn:ngsi-ld:S:1"):
        batch_create_mutation(ent(1), T1)(stored(1))


def test_upsert_creates_when_absent() -> None:
    new = batch_upsert_mutation(ent(1, temp=5), T1)(None)
    assert new is not None and new["createdAt"] == T1 and new["attrs"][TEMP][0]["value"] == 5


def test_upsert_replace_drops_attributes_not_given() -> None:
    new = batch_upsert_mutation(ent(1, hum=60), T1, "replace")(stored(1, temp=1, hum=50))
    assert new is not None
    assert set(new["attrs"]) == {HUM} and new["createdAt"] == T0


def test_upsert_update_keeps_other_attributes_and_adds_types() -> None:
    new = batch_upsert_mutation(ent(1, [DEVICE], hum=60), T1, "update")(stored(1, temp=1, hum=5))
    assert new is not None
    assert new["attrs"][TEMP][0]["value"] == 1 and new["attrs"][HUM][0]["value"] == 60
    assert new["type"] == [SENSOR, DEVICE]


def test_upsert_rejects_unknown_mode_and_null() -> None:
    with pytest.raises(InvalidRequest, match="merge"):
        batch_upsert_mutation(ent(1), T1, "merge")
    with pytest.raises(BadRequestData):
        batch_upsert_mutation(ent(1, temp=DELETE), T1)


def test_batch_update_appends_and_honours_no_overwrite() -> None:
    current = stored(1, temp=1)
    new = batch_update_mutation(ent(1, temp=2, hum=3), T1)(current)
    assert new is not None and new["attrs"][TEMP][0]["value"] == 2
    new = batch_update_mutation(ent(1, temp=2, hum=3), T1, no_overwrite=True)(current)
    assert new is not None
    assert new["attrs"][TEMP][0]["value"] == 1 and new["attrs"][HUM][0]["value"] == 3
    with pytest.raises(ResourceNotFound, match="urn:ngsi-ld:S:1"):
        batch_update_mutation(ent(1, temp=2), T1)(None)


def test_batch_update_reports_what_no_overwrite_kept() -> None:
    mutation = batch_update_mutation(ent(1, temp=2, hum=3), T1, no_overwrite=True)
    assert isinstance(mutation, AttrsMutation)
    mutation(stored(1, temp=1))
    assert [n.attr for n in mutation.result.not_updated] == [TEMP]
    assert mutation.result.updated == [HUM]


def test_batch_update_replace_mode_replaces_existing_entities_only() -> None:
    current = stored(1, temp=1, hum=2)
    new = batch_update_mutation(ent(1, hum=5), T1, mode="replace")(current)
    assert new is not None and set(new["attrs"]) == {HUM}
    assert new["createdAt"] == current["createdAt"]
    with pytest.raises(ResourceNotFound):
        batch_update_mutation(ent(1, hum=5), T1, mode="replace")(None)
    with pytest.raises(InvalidRequest):
        batch_update_mutation(ent(1), T1, mode="append")


@pytest.mark.parametrize("items", [None, {}, [], [ent(1), None], [None]])
def test_check_items_refuses_the_whole_batch(items: Any) -> None:
    with pytest.raises(BadRequestData):
        check_items(items, 10)


def test_check_items_keeps_other_bad_elements_for_later() -> None:
    items = [ent(1), 5, "x", {"no": "id"}]
    assert check_items(items, 10) is items
    with pytest.raises(BadRequestData):
        check_items([ent(n) for n in range(3)], 2)


def test_batch_delete_and_merge() -> None:
    assert batch_delete_mutation("urn:ngsi-ld:S:1")(stored(1)) is None
    with pytest.raises(ResourceNotFound):
        batch_delete_mutation("urn:ngsi-ld:S:1")(None)
    new = batch_merge_mutation(ent(1, temp=DELETE, hum=7), T1)(stored(1, temp=1))
    assert new is not None and set(new["attrs"]) == {HUM}
    with pytest.raises(ResourceNotFound):
        batch_merge_mutation(ent(1, hum=7), T1)(None)


# -- check_batch ---------------------------------------------------------------------------


def test_check_batch_rejects_empty_and_oversized() -> None:
    with pytest.raises(BadRequestData, match="at least one"):
        check_batch([], 10)
    with pytest.raises(BadRequestData, match="batch of 3 entities exceeds the maximum of 2"):
        check_batch([ent(1), ent(2), ent(3)], 2)


def test_check_batch_rejects_missing_id_and_non_list() -> None:
    with pytest.raises(BadRequestData, match="id"):
        check_batch([{"type": [SENSOR]}], 10)
    with pytest.raises(BadRequestData, match="array"):
        check_batch("urn:ngsi-ld:S:1", 10)


def test_check_batch_rejects_duplicates_for_create_and_delete() -> None:
    with pytest.raises(BadRequestData, match="urn:ngsi-ld:S:1"):
        check_batch([ent(1), ent(2), ent(1)], 10)
    with pytest.raises(BadRequestData, match="urn:ngsi-ld:S:2"):
        check_batch(["urn:ngsi-ld:S:2", "urn:ngsi-ld:S:2"], 10)
    assert check_batch(["urn:ngsi-ld:S:1", "urn:ngsi-ld:S:2"], 10) == [
        "urn:ngsi-ld:S:1",
        "urn:ngsi-ld:S:2",
    ]


def test_check_batch_combines_duplicates_in_order() -> None:
    first = ent(1, temp=1, hum=1)
    second = ent(1, [DEVICE], temp=2)
    out = check_batch([first, ent(2), second], 10, duplicates="combine")
    assert [e["id"] for e in out] == ["urn:ngsi-ld:S:1", "urn:ngsi-ld:S:2"]
    assert out[0]["type"] == [SENSOR, DEVICE]
    assert out[0]["attrs"][TEMP][0]["value"] == 2 and out[0]["attrs"][HUM][0]["value"] == 1


def test_check_batch_merge_combines_members() -> None:
    first = {"id": "urn:x:1", "attrs": {TEMP: [prop(1, unitCode="CEL")]}}
    second = {"id": "urn:x:1", "attrs": {TEMP: [{"value": 2}]}}
    (out,) = check_batch([first, second], 10, duplicates="merge")
    assert out["attrs"][TEMP][0] == prop(2, unitCode="CEL")


@given(st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=15))
def test_check_batch_keeps_first_occurrence_order(ids: list[int]) -> None:
    out = check_batch([ent(i, temp=i) for i in ids], 100, duplicates="combine")
    assert [e["id"] for e in out] == [f"urn:ngsi-ld:S:{i}" for i in dict.fromkeys(ids)]
