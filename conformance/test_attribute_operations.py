"""The v1.9.1 corners of 5.6.1 to 5.6.5 and 5.6.17: missing ids, type selectors (4.17),
Attribute Fragments, the NGSI-LD Null (5.5.4, 5.5.8, 5.5.12) and the ngsildproof member."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.client import Client, entity_path
from conformance.data import (
    BAD_DATA,
    ENTITIES,
    INVALID,
    NOT_FOUND,
    NULL,
    attr_path,
    create,
    eid,
    entity,
    get,
    is_problem,
    prop,
    rel,
    stored,
)


def _building(client: Client, uid: str, **attrs: object) -> str:
    entity_id = eid("Building", uid)
    create(client, entity(entity_id, "Building", name=prop("x"),
                          isParked=rel("urn:ngsi-ld:Parking:1", observedAt="2024-01-01T00:00:00Z",
                                       providedBy=rel("urn:ngsi-ld:Person:bob")),
                          **attrs))
    return entity_id


@pytest.mark.clause("5.6.1")
def test_create_body_must_be_an_object(client: Client) -> None:
    assert is_problem(client.post(ENTITIES, []), 400, INVALID)


@pytest.mark.clause("5.6.3")
@pytest.mark.parametrize(("method", "path"), [
    ("POST", ENTITIES + "//attrs/"), ("PATCH", ENTITIES + "//attrs/"),
    ("PATCH", ENTITIES + "//attrs/speed"), ("DELETE", ENTITIES + "//attrs/speed"),
    ("PATCH", ENTITIES + "/"), ("PUT", ENTITIES + "/"),
])
def test_a_missing_entity_id_is_bad_request_data(client: Client, method: str, path: str) -> None:
    """5.6.x.4: "If the Entity ID is not present ... BadRequestData"."""
    reply = client.request(method, path, {"speed": prop(1)})
    assert is_problem(reply, 400, BAD_DATA), reply.raw


@pytest.mark.clause("4.17")
@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("POST", "/attrs", {"name": prop("y")}),
    ("PATCH", "/attrs", {"name": prop("y")}),
    ("PATCH", "/attrs/name", {"value": "y"}),
    ("DELETE", "/attrs/name", None),
])
def test_a_type_selector_gates_attribute_operations(
    client: Client, uid: str, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    entity_id = _building(client, uid)
    path = entity_path(entity_id) + suffix
    assert is_problem(client.request(method, path + "?type=Vehicle", body), 404, NOT_FOUND)
    assert stored(client, entity_id)["name"]["value"] == "x"
    assert client.request(method, path + "?type=Building,Vehicle", body).status == 204


@pytest.mark.clause("5.6.5")
def test_delete_attribute_scope_removes_the_scope(client: Client, uid: str) -> None:
    entity_id = eid("Building", uid)
    create(client, {**entity(entity_id, "Building"), "scope": "/Madrid"})
    assert client.delete(attr_path(entity_id, "scope")).status == 204
    assert "scope" not in stored(client, entity_id)
    assert is_problem(client.delete(attr_path(entity_id, "scope")), 404, NOT_FOUND)


@pytest.mark.clause("5.6.4")
def test_partial_update_of_scope_is_refused(client: Client, uid: str) -> None:
    entity_id = eid("Building", uid)
    create(client, {**entity(entity_id, "Building"), "scope": "/Madrid"})
    assert is_problem(client.patch(attr_path(entity_id, "scope"), {"value": "/B"}), 400, BAD_DATA)
    assert stored(client, entity_id)["scope"] == "/Madrid"


@pytest.mark.clause("5.6.4")
def test_partial_update_takes_an_attribute_fragment(client: Client, uid: str) -> None:
    """A fragment holding only a sub-attribute merges it into the Relationship."""
    entity_id = _building(client, uid)
    fragment = {"providedBy": rel("urn:ngsi-ld:Person:joe")}
    assert client.patch(attr_path(entity_id, "isParked"), fragment).status == 204
    assert stored(client, entity_id)["isParked"] == rel(
        "urn:ngsi-ld:Parking:1", observedAt="2024-01-01T00:00:00Z",
        providedBy=rel("urn:ngsi-ld:Person:joe"))


@pytest.mark.clause("5.6.4")
def test_partial_update_cannot_change_the_attribute_type(client: Client, uid: str) -> None:
    entity_id = _building(client, uid)
    reply = client.patch(attr_path(entity_id, "name"), rel("urn:ngsi-ld:Entity:01"))
    assert is_problem(reply, 400, BAD_DATA)
    assert stored(client, entity_id)["name"] == prop("x")


@pytest.mark.clause("5.5.8")
@pytest.mark.parametrize(("attr", "fragment"), [
    ("name", {"type": "Property", "value": NULL}),
    ("isParked", {"type": "Relationship", "object": NULL}),
    ("street", {"type": "LanguageProperty", "languageMap": {"@none": NULL}}),
])
def test_partial_update_with_the_null_deletes_the_attribute(
    client: Client, uid: str, attr: str, fragment: dict[str, Any]
) -> None:
    entity_id = _building(client, uid, street={"type": "LanguageProperty",
                                               "languageMap": {"fr": "Grand Place"}})
    assert client.patch(attr_path(entity_id, attr), fragment).status == 204
    assert attr not in stored(client, entity_id)


@pytest.mark.clause("5.5.4")
def test_the_null_inside_a_value_only_merges(client: Client, uid: str) -> None:
    address = {"street": "Straße des 17. Juni", "city": "Berlin", "country": "Germany"}
    entity_id = _building(client, uid, address=prop(address))
    inner_null = {"street": "Pariser Platz", "country": NULL}
    reply = client.patch(attr_path(entity_id, "address"), {"value": inner_null})
    assert is_problem(reply, 400, BAD_DATA)
    assert is_problem(client.post(ENTITIES, entity(eid("Building", uid, 2), "Building",
                                                   address=prop(inner_null))), 400, BAD_DATA)
    # 5.5.12: a merge goes into the value object (RFC 7396)
    assert client.patch(entity_path(entity_id), {"address": prop(inner_null)}).status == 204
    assert stored(client, entity_id)["address"]["value"] == {"street": "Pariser Platz",
                                                             "city": "Berlin"}


@pytest.mark.clause("5.6.3")
def test_append_without_overwrite_adds_the_scopes(client: Client, uid: str) -> None:
    entity_id = eid("Building", uid)
    create(client, {**entity(entity_id, "Building"), "scope": "/Madrid"})
    reply = client.post(entity_path(entity_id) + "/attrs?options=noOverwrite", {"scope": "/A/B"})
    assert reply.status == 204
    assert sorted(stored(client, entity_id)["scope"]) == ["/A/B", "/Madrid"]


@pytest.mark.clause("4.5.2.2")
def test_ngsildproof_round_trips_with_its_sealed_members(client: Client, uid: str) -> None:
    entity_id = eid("Vehicle", uid)
    proof = {"type": "Property", "entityIdSealed": entity_id, "entityTypeSealed": "Vehicle",
             "value": {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022",
                       "proofValue": "zQeVbY4oey5q2M3XKaxup3tmzN4DRFTLVqpLMweBrSxMY"}}
    create(client, entity(entity_id, "Vehicle", ngsildproof=proof))
    assert stored(client, entity_id)["ngsildproof"] == proof
    sealed_elsewhere = entity(eid("Vehicle", uid, 2), "Vehicle",
                              speed=prop(1, entityIdSealed=entity_id))
    assert is_problem(client.post(ENTITIES, sealed_elsewhere), 400, BAD_DATA)
    assert get(client, eid("Vehicle", uid, 2)).status == 404
