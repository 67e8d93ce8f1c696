"""5.6.2 Update Attributes, 5.6.3 Append Attributes, 5.6.4 Partial Attribute Update,
5.6.19 Replace Attribute and 5.6.5 Delete Attribute."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conformance.client import Client, entity_path
from conformance.data import (
    BAD_DATA,
    NOT_FOUND,
    attr_path,
    create,
    eid,
    entity,
    is_problem,
    prop,
    rel,
    stored,
)

#: where the core context's @vocab puts the terms of these tests
EX = "https://uri.etsi.org/ngsi-ld/default-context/"


def _thing(client: Client, uid: str, **attrs: Any) -> str:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, temperature=prop(20, unitCode="CEL"),
                          owner=rel("urn:ngsi-ld:Person:alice"), **attrs))
    return entity_id


def _attrs(entity_id: str) -> str:
    return entity_path(entity_id) + "/attrs"


# 5.6.2 Update Entity Attributes

@pytest.mark.clause("5.6.2")
def test_update_existing_attributes_is_204(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    reply = client.patch(_attrs(entity_id), {"temperature": prop(25),
                                             "owner": rel("urn:ngsi-ld:Person:bob")})
    assert reply.status == 204 and not reply.raw.strip()
    got = stored(client, entity_id)
    assert got["temperature"] == prop(25)
    assert got["owner"] == rel("urn:ngsi-ld:Person:bob")


@pytest.mark.clause("5.6.2")
def test_update_appends_an_unknown_attribute(client: Client, uid: str) -> None:
    """5.6.2.4 (v1.9.1): attributes the entity lacks are appended, answer 204."""
    entity_id = _thing(client, uid)
    reply = client.patch(_attrs(entity_id), {"temperature": prop(30), "humidity": prop(50)})
    assert reply.status == 204, reply.raw
    got = stored(client, entity_id)
    assert got["temperature"] == prop(30)  # replaced whole: unitCode gone
    assert got["humidity"] == prop(50)


@pytest.mark.clause("5.6.2")
def test_update_adds_entity_types(client: Client, uid: str) -> None:
    """5.6.2.4: the fragment's types not yet in the entity are added."""
    entity_id = _thing(client, uid)
    assert client.patch(_attrs(entity_id), {"type": ["Car", "Thing"]}).status == 204
    assert sorted(stored(client, entity_id)["type"]) == ["Car", "Thing"]


@pytest.mark.clause("5.6.2")
def test_update_null_for_a_missing_attribute_is_207(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    reply = client.patch(_attrs(entity_id), {"temperature": prop(30),
                                             "humidity": prop("urn:ngsi-ld:null")})
    assert reply.status == 207
    result = reply.json
    assert result["updated"] == [EX + "temperature"]
    assert [n["attributeName"] for n in result["notUpdated"]] == [EX + "humidity"]
    assert all(n["reason"] for n in result["notUpdated"])
    assert stored(client, entity_id)["temperature"]["value"] == 30


@pytest.mark.clause("5.6.2")
def test_update_missing_entity_is_404(client: Client, uid: str) -> None:
    reply = client.patch(_attrs(eid("Nothing", uid)), {"temperature": prop(1)})
    assert is_problem(reply, 404, NOT_FOUND)


@pytest.mark.clause("5.6.2")
def test_update_advances_modified_at_only(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    before = stored(client, entity_id, "options=sysAttrs")
    assert client.patch(_attrs(entity_id), {"temperature": prop(26)}).status == 204
    after = stored(client, entity_id, "options=sysAttrs")
    assert after["createdAt"] == before["createdAt"]
    assert after["temperature"]["createdAt"] == before["temperature"]["createdAt"]
    assert after["temperature"]["modifiedAt"] > before["temperature"]["modifiedAt"]
    assert after["modifiedAt"] > before["modifiedAt"]


@pytest.mark.clause("5.6.2")
def test_update_with_invalid_fragment_changes_nothing(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    reply = client.patch(_attrs(entity_id), {"temperature": prop(30),
                                             "owner": {"type": "Relationship"}})
    assert is_problem(reply, 400, BAD_DATA)
    assert stored(client, entity_id)["temperature"]["value"] == 20


# 5.6.3 Append Entity Attributes

@pytest.mark.clause("5.6.3")
def test_append_adds_and_overwrites(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    reply = client.post(_attrs(entity_id), {"temperature": prop(22), "humidity": prop(40)})
    assert reply.status == 204
    got = stored(client, entity_id)
    assert got["temperature"] == prop(22)  # overwritten as a whole: unitCode gone
    assert got["humidity"] == prop(40)
    assert got["owner"] == rel("urn:ngsi-ld:Person:alice")


@pytest.mark.clause("5.6.3")
def test_append_no_overwrite_keeps_existing(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    reply = client.post(_attrs(entity_id) + "?options=noOverwrite",
                        {"temperature": prop(99), "humidity": prop(40)})
    assert reply.status == 207
    # UpdateResult names are fully qualified (the ETSI test purposes of 5.6.3 expect so)
    assert reply.json["updated"] == [EX + "humidity"]
    assert [n["attributeName"] for n in reply.json["notUpdated"]] == [EX + "temperature"]
    got = stored(client, entity_id)
    assert got["temperature"] == prop(20, unitCode="CEL")
    assert got["humidity"] == prop(40)


@pytest.mark.clause("5.6.3")
def test_append_new_dataset_instance(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    extra = prop(70, datasetId="urn:ngsi-ld:Dataset:f")
    assert client.post(_attrs(entity_id), {"temperature": extra}).status == 204
    got = stored(client, entity_id)["temperature"]
    assert sorted(got, key=lambda i: i["value"]) == [prop(20, unitCode="CEL"), extra]


@pytest.mark.clause("5.6.3")
def test_append_to_missing_entity_is_404(client: Client, uid: str) -> None:
    reply = client.post(_attrs(eid("Nothing", uid)), {"temperature": prop(1)})
    assert is_problem(reply, 404, NOT_FOUND)
    assert client.get(entity_path(eid("Nothing", uid))).status == 404


# 5.6.4 Partial Attribute Update

@pytest.mark.clause("5.6.4")
def test_partial_update_changes_only_given_members(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid, status=prop("ok", quality=prop(0.9)))
    reply = client.patch(attr_path(entity_id, "status"), {"value": "broken"})
    assert reply.status == 204
    got = stored(client, entity_id)["status"]
    assert got == prop("broken", quality=prop(0.9))
    reply = client.patch(attr_path(entity_id, "temperature"), {"type": "Property", "value": 5})
    assert reply.status == 204
    assert stored(client, entity_id)["temperature"] == prop(5, unitCode="CEL")


@pytest.mark.clause("5.6.4")
def test_partial_update_of_missing_attribute_is_404(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    reply = client.patch(attr_path(entity_id, "humidity"), {"value": 5})
    assert is_problem(reply, 404, NOT_FOUND)
    assert "humidity" not in stored(client, entity_id)
    reply = client.patch(attr_path(eid("Nothing", uid), "humidity"), {"value": 5})
    assert is_problem(reply, 404, NOT_FOUND)


@pytest.mark.clause("5.6.4")
def test_partial_update_of_one_dataset_instance(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid, speed=[prop(1), prop(2, datasetId="urn:ngsi-ld:Dataset:a")])
    reply = client.patch(attr_path(entity_id, "speed"),
                         {"value": 3, "datasetId": "urn:ngsi-ld:Dataset:a"})
    assert reply.status == 204
    got = sorted(stored(client, entity_id)["speed"], key=lambda i: i["value"])
    assert got == [prop(1), prop(3, datasetId="urn:ngsi-ld:Dataset:a")]


# 5.6.19 Replace Attribute

@pytest.mark.clause("5.6.19")
def test_replace_attribute(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid, status=prop("ok", quality=prop(0.9)))
    reply = client.put(attr_path(entity_id, "status"), prop("replaced"))
    assert reply.status == 204
    assert stored(client, entity_id)["status"] == prop("replaced")  # sub-attribute gone
    reply = client.put(attr_path(entity_id, "owner"), rel("urn:ngsi-ld:Person:dave"))
    assert reply.status == 204
    assert stored(client, entity_id)["owner"] == rel("urn:ngsi-ld:Person:dave")


@pytest.mark.clause("5.6.19")
def test_replace_missing_attribute_is_404(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    assert is_problem(client.put(attr_path(entity_id, "humidity"), prop(1)), 404, NOT_FOUND)
    assert "humidity" not in stored(client, entity_id)


# 5.6.5 Delete Entity Attribute

@pytest.mark.clause("5.6.5")
def test_delete_attribute(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    assert client.delete(attr_path(entity_id, "temperature")).status == 204
    assert "temperature" not in stored(client, entity_id)
    assert is_problem(client.delete(attr_path(entity_id, "temperature")), 404, NOT_FOUND)
    assert is_problem(client.delete(attr_path(eid("Nothing", uid), "temperature")), 404,
                      NOT_FOUND)


@pytest.mark.clause("5.6.5")
def test_delete_one_dataset_instance(client: Client, uid: str) -> None:
    gps = "urn:ngsi-ld:Dataset:gps"
    entity_id = _thing(client, uid, speed=[prop(1), prop(2, datasetId=gps)])
    assert client.delete(attr_path(entity_id, "speed") + f"?datasetId={gps}").status == 204
    speed = stored(client, entity_id)["speed"]
    assert (speed if isinstance(speed, list) else [speed]) == [prop(1)]
    missing = client.delete(attr_path(entity_id, "speed") + "?datasetId=urn:ngsi-ld:Dataset:x")
    assert is_problem(missing, 404, NOT_FOUND)
    # without datasetId the default instance goes
    assert client.delete(attr_path(entity_id, "speed")).status == 204
    assert "speed" not in stored(client, entity_id)


@pytest.mark.clause("5.6.5")
def test_delete_all_instances(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid, speed=[prop(1), prop(2, datasetId="urn:ngsi-ld:Dataset:a"),
                                           prop(3, datasetId="urn:ngsi-ld:Dataset:b")])
    assert client.delete(attr_path(entity_id, "speed") + "?deleteAll=true").status == 204
    got = stored(client, entity_id)
    assert "speed" not in got and got["temperature"]["value"] == 20


# 5.6.2 / 4.3.6 concurrent updates of one entity

@pytest.mark.clause("5.6.4")
def test_concurrent_patches_of_different_attributes_both_land(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid, a=prop(0), b=prop(0))
    rounds = 15
    failures: list[int] = []

    def worker(name: str) -> None:
        for n in range(1, rounds + 1):
            status = client.patch(attr_path(entity_id, name), {"value": n}).status
            if status != 204:
                failures.append(status)

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    got = stored(client, entity_id)
    assert got["a"]["value"] == rounds and got["b"]["value"] == rounds


@pytest.mark.clause("5.6.2")
def test_concurrent_attribute_updates_both_land(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid, a=prop(0), b=prop(0))
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def worker(name: str) -> None:
        barrier.wait()
        statuses.append(client.patch(_attrs(entity_id), {name: prop(name)}).status)

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [204, 204]
    got = stored(client, entity_id)
    assert got["a"]["value"] == "a" and got["b"]["value"] == "b"


@pytest.mark.clause("5.6.2")
def test_update_targets_one_dataset_instance(client: Client, uid: str) -> None:
    radar = "urn:ngsi-ld:Dataset:radar"
    entity_id = _thing(client, uid, speed=[prop(1), prop(2, datasetId=radar)])
    assert client.patch(_attrs(entity_id), {"speed": prop(9, datasetId=radar)}).status == 204
    got = sorted(stored(client, entity_id)["speed"], key=lambda i: i["value"])
    assert got == [prop(1), prop(9, datasetId=radar)]
    # an instance that does not exist is appended (5.6.2.4, v1.9.1)
    reply = client.patch(_attrs(entity_id), {"speed": prop(5, datasetId="urn:ngsi-ld:Dataset:x")})
    assert reply.status == 204
    assert len(stored(client, entity_id)["speed"]) == 3


@pytest.mark.clause("5.6.4")
def test_partial_update_keeps_observed_at_and_unit(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid, level=prop(1, observedAt="2024-01-01T00:00:00.000Z",
                                                unitCode="MTR"))
    assert client.patch(attr_path(entity_id, "level"), {"value": 2}).status == 204
    assert stored(client, entity_id)["level"] == prop(2, observedAt="2024-01-01T00:00:00.000Z",
                                                      unitCode="MTR")
    reply = client.patch(attr_path(entity_id, "owner"), {"object": "urn:ngsi-ld:Person:eve"})
    assert reply.status == 204
    assert stored(client, entity_id)["owner"] == rel("urn:ngsi-ld:Person:eve")


@pytest.mark.clause("5.6.19")
def test_replace_attribute_may_change_its_kind(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    reply = client.put(attr_path(entity_id, "temperature"),
                       {"type": "LanguageProperty", "languageMap": {"en": "warm"}})
    assert reply.status == 204
    assert stored(client, entity_id)["temperature"] == {"type": "LanguageProperty",
                                                        "languageMap": {"en": "warm"}}


@pytest.mark.clause("5.6.3")
def test_append_several_instances_at_once(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    speed = [prop(1), prop(2, datasetId="urn:ngsi-ld:Dataset:a")]
    assert client.post(_attrs(entity_id), {"speed": speed}).status == 204
    assert sorted(stored(client, entity_id)["speed"], key=lambda i: i["value"]) == speed


@pytest.mark.clause("5.6.3")
def test_append_invalid_fragment_is_400_and_changes_nothing(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    before = stored(client, entity_id)
    reply = client.post(_attrs(entity_id), {"humidity": prop(1),
                                            "location": {"type": "GeoProperty", "value": {
                                                "type": "Point", "coordinates": [0, 95]}}})
    assert is_problem(reply, 400, BAD_DATA)
    assert stored(client, entity_id) == before
