"""5.6.17 Merge Entity, 5.6.18 Replace Entity and 5.6.6 Delete Entity."""

from __future__ import annotations

import pytest

from conformance.client import Client, entity_path
from conformance.data import (
    BAD_DATA,
    NOT_FOUND,
    NULL,
    absent,
    create,
    eid,
    entity,
    is_problem,
    prop,
    rel,
    stored,
)


def _thing(client: Client, uid: str) -> str:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id,
                          temperature=prop(20, unitCode="CEL",
                                           observedAt="2024-01-01T00:00:00.000Z"),
                          status=prop("ok", quality=prop(0.9), source=prop("s1")),
                          owner=rel("urn:ngsi-ld:Person:alice")))
    return entity_id


# 5.6.17 Merge Entity

@pytest.mark.clause("5.6.17")
def test_merge_adds_and_changes_attributes(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    reply = client.patch(entity_path(entity_id), {"humidity": prop(40), "temperature": prop(25)})
    assert reply.status == 204 and not reply.raw.strip()
    got = stored(client, entity_id)
    assert got["humidity"] == prop(40)
    assert got["temperature"]["value"] == 25
    assert got["temperature"]["unitCode"] == "CEL"  # members not in the fragment are kept
    assert got["owner"] == rel("urn:ngsi-ld:Person:alice")


@pytest.mark.clause("5.6.17")
def test_merge_keeps_unmentioned_sub_attributes(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    body = {"status": prop("degraded", quality=prop(0.5))}
    assert client.patch(entity_path(entity_id), body).status == 204
    got = stored(client, entity_id)["status"]
    assert got == prop("degraded", quality=prop(0.5), source=prop("s1"))


@pytest.mark.clause("5.6.17")
def test_merge_null_deletes_property_and_sub_attribute(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    body = {"status": {"type": "Property", "value": "ok",
                       "quality": {"type": "Property", "value": NULL}}}
    assert client.patch(entity_path(entity_id), body).status == 204
    assert stored(client, entity_id)["status"] == prop("ok", source=prop("s1"))
    assert client.patch(entity_path(entity_id), {"temperature": prop(NULL)}).status == 204
    got = stored(client, entity_id)
    assert "temperature" not in got and "status" in got


@pytest.mark.clause("5.6.17")
def test_merge_null_object_deletes_relationship(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    body = {"owner": {"type": "Relationship", "object": NULL}}
    assert client.patch(entity_path(entity_id), body).status == 204
    got = stored(client, entity_id)
    assert "owner" not in got and "temperature" in got


@pytest.mark.clause("5.6.17")
def test_merge_key_values(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    reply = client.patch(entity_path(entity_id) + "?options=keyValues",
                         {"temperature": 30, "humidity": 41})
    assert reply.status == 204
    got = stored(client, entity_id)
    assert got["temperature"]["value"] == 30 and got["temperature"]["unitCode"] == "CEL"
    assert got["humidity"] == prop(41)


@pytest.mark.clause("5.6.17")
def test_merge_missing_entity_is_404(client: Client, uid: str) -> None:
    reply = client.patch(entity_path(eid("Nothing", uid)), {"humidity": prop(40)})
    assert is_problem(reply, 404, NOT_FOUND)
    assert absent(client, eid("Nothing", uid))


@pytest.mark.clause("5.6.17")
def test_merge_with_invalid_attribute_changes_nothing(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    before = stored(client, entity_id)
    reply = client.patch(entity_path(entity_id), {"humidity": prop(40),
                                                  "owner": {"type": "Relationship",
                                                            "object": "not a uri"}})
    assert is_problem(reply, 400, BAD_DATA)
    assert stored(client, entity_id) == before


# 5.6.18 Replace Entity

@pytest.mark.clause("5.6.18")
def test_replace_entity(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    created = stored(client, entity_id, "options=sysAttrs")["createdAt"]
    reply = client.put(entity_path(entity_id), entity(entity_id, humidity=prop(40)))
    assert reply.status == 204
    assert stored(client, entity_id) == entity(entity_id, humidity=prop(40))
    assert stored(client, entity_id, "options=sysAttrs")["createdAt"] == created


@pytest.mark.clause("5.6.18")
def test_replace_entity_can_change_type(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    assert client.put(entity_path(entity_id), {"type": "Other", "a": prop(1)}).status == 204
    assert stored(client, entity_id) == {"id": entity_id, "type": "Other", "a": prop(1)}


@pytest.mark.clause("5.6.18")
def test_replace_missing_entity_is_404(client: Client, uid: str) -> None:
    entity_id = eid("Nothing", uid)
    reply = client.put(entity_path(entity_id), entity(entity_id, humidity=prop(40)))
    assert is_problem(reply, 404, NOT_FOUND)
    assert absent(client, entity_id)


@pytest.mark.clause("5.6.18")
def test_replace_with_other_id_is_400(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    before = stored(client, entity_id)
    reply = client.put(entity_path(entity_id), entity(eid("Thing", uid, "other"), a=prop(1)))
    assert is_problem(reply, 400, BAD_DATA)
    assert stored(client, entity_id) == before
    assert absent(client, eid("Thing", uid, "other"))


@pytest.mark.clause("5.6.18")
def test_replace_with_invalid_body_changes_nothing(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    before = stored(client, entity_id)
    reply = client.put(entity_path(entity_id), entity(entity_id, a={"type": "Property"}))
    assert is_problem(reply, 400, BAD_DATA)
    assert stored(client, entity_id) == before


# 5.6.6 Delete Entity

@pytest.mark.clause("5.6.6")
def test_delete_entity(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    reply = client.delete(entity_path(entity_id))
    assert reply.status == 204 and not reply.raw.strip()
    assert absent(client, entity_id)
    assert is_problem(client.delete(entity_path(entity_id)), 404, NOT_FOUND)


@pytest.mark.clause("5.6.6")
def test_recreated_entity_starts_empty(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    assert client.delete(entity_path(entity_id)).status == 204
    create(client, entity(entity_id, "Thing", a=prop(1)))
    assert stored(client, entity_id) == entity(entity_id, a=prop(1))


@pytest.mark.clause("5.6.6")
def test_delete_unknown_entity_is_404(client: Client, uid: str) -> None:
    assert is_problem(client.delete(entity_path(eid("Nothing", uid))), 404, NOT_FOUND)


@pytest.mark.clause("5.6.6")
def test_delete_with_other_type_is_404(client: Client, uid: str) -> None:
    entity_id = _thing(client, uid)
    assert client.delete(entity_path(entity_id) + "?type=Other").status == 404
    assert stored(client, entity_id)["type"] == "Thing"
