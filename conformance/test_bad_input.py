"""Bad input to the entity API: the right ProblemDetails (5.5.2) and nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.client import Client, entity_path
from conformance.data import (
    BAD_DATA,
    BATCH,
    ENTITIES,
    INVALID,
    NOT_FOUND,
    absent,
    attr_path,
    create,
    eid,
    entity,
    is_problem,
    prop,
    rel,
    stored,
)

POINT = {"type": "Point", "coordinates": [2.35, 48.85]}


def _geo(value: Any) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": value}


# each: attributes that make an otherwise valid entity invalid (4.5, 5.6.1)
BAD_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "property without value": {"a": {"type": "Property"}},
    "property with object": {"a": {"type": "Property", "object": "urn:ngsi-ld:X:1"}},
    "relationship without object": {"a": {"type": "Relationship"}},
    "relationship with value": {"a": {"type": "Relationship", "value": "urn:ngsi-ld:X:1"}},
    "relationship object not a URI": {"a": rel("not a uri")},
    "relationship object a number": {"a": {"type": "Relationship", "object": 5}},
    "unknown attribute type": {"a": {"type": "Propertee", "value": 1}},
    "property value null": {"a": {"type": "Property", "value": None}},
    "language property without languageMap": {"a": {"type": "LanguageProperty", "value": "x"}},
    "language map not an object": {"a": {"type": "LanguageProperty", "languageMap": "x"}},
    "list property without valueList": {"a": {"type": "ListProperty", "value": [1]}},
    "json property without json": {"a": {"type": "JsonProperty", "value": {"x": 1}}},
    "vocab property without vocab": {"a": {"type": "VocabProperty", "value": "x"}},
    "geo value not geojson": {"location": _geo("somewhere")},
    "unclosed polygon": {"location": _geo({"type": "Polygon",
                                           "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]})},
    "latitude 95": {"location": _geo({"type": "Point", "coordinates": [10, 95]})},
    "longitude 200": {"location": _geo({"type": "Point", "coordinates": [200, 10]})},
    "point without coordinates": {"location": _geo({"type": "Point"})},
    "observedAt not ISO 8601": {"a": prop(1, observedAt="yesterday at noon")},
    "observedAt a number": {"a": prop(1, observedAt=1700000000)},
    "datasetId not a URI": {"a": prop(1, datasetId="not a uri")},
    "two default instances": {"a": [prop(1), prop(2)]},
    "same datasetId twice": {"a": [prop(1, datasetId="urn:ngsi-ld:D:1"),
                                   prop(2, datasetId="urn:ngsi-ld:D:1")]},
    "unitCode not a string": {"a": prop(1, unitCode=5)},
    "sub-attribute without value": {"a": prop(1, q={"type": "Property"})},
    "reserved name id as sub-attribute": {"a": prop(1, id=prop(2))},
    "reserved name @context-like": {"@id": prop(1)},
    "attribute named value": {"value": prop(1)},
    "attribute named object": {"object": prop(1)},
    "attribute named datasetId": {"datasetId": prop(1)},
    "attribute named observedAt": {"observedAt": prop(1)},
    "invalid attribute name": {"a b<c>": prop(1)},
    "scope not a string": {"scope": 5},
}


@pytest.mark.clause("5.6.1")
@pytest.mark.parametrize("case", list(BAD_ATTRIBUTES))
def test_invalid_entity_is_400_and_not_stored(client: Client, uid: str, case: str) -> None:
    entity_id = eid("Bad", uid)
    body = {"id": entity_id, "type": "Bad", "ok": prop(1), **BAD_ATTRIBUTES[case]}
    reply = client.post(ENTITIES, body)
    assert is_problem(reply, 400, BAD_DATA), (reply.status, reply.raw)
    assert absent(client, entity_id)


@pytest.mark.clause("5.6.1")
@pytest.mark.parametrize("body", [
    {"type": "Bad", "a": prop(1)},
    {"id": "", "type": "Bad"},
    {"id": "no-scheme", "type": "Bad"},
    {"id": "has space:x y", "type": "Bad"},
    {"id": 5, "type": "Bad"},
    {"id": ["urn:ngsi-ld:Bad:1"], "type": "Bad"},
], ids=["missing", "empty", "no scheme", "space", "number", "list"])
def test_missing_or_non_uri_id_is_400(client: Client, body: dict[str, Any]) -> None:
    reply = client.post(ENTITIES, body)
    assert is_problem(reply, 400, BAD_DATA)
    assert "id" in reply.json["detail"].lower()


@pytest.mark.clause("5.6.1")
@pytest.mark.parametrize("kind", [None, "", 5, {"a": 1}, "a b"])
def test_missing_or_invalid_type_is_400(client: Client, uid: str, kind: Any) -> None:
    entity_id = eid("Bad", uid)
    body = {"id": entity_id} if kind is None else {"id": entity_id, "type": kind}
    assert is_problem(client.post(ENTITIES, body), 400, BAD_DATA)
    assert absent(client, entity_id)


@pytest.mark.clause("6.3.4")
@pytest.mark.parametrize("raw", [b"[]", b"[{}]", b"5", b'"text"', b"null", b"true"])
def test_json_that_is_not_an_object_is_400(client: Client, raw: bytes) -> None:
    reply = client.post(ENTITIES, raw=raw)
    assert is_problem(reply, 400, BAD_DATA, INVALID)


@pytest.mark.clause("6.3.4")
def test_deeply_nested_body_is_400_and_broker_lives(client: Client, uid: str) -> None:
    entity_id = eid("Deep", uid)
    depth = 100_000
    raw = (f'{{"id": "{entity_id}", "type": "Deep", "a": {{"type": "Property", "value": '
           + "[" * depth + "]" * depth + "}}").encode()
    reply = client.post(ENTITIES, raw=raw)
    assert is_problem(reply, 400, BAD_DATA, INVALID)
    assert absent(client, entity_id)
    assert client.get("/version").status == 200


@pytest.mark.clause("6.3.4")
def test_deeply_nested_sub_attributes_are_400(client: Client, uid: str) -> None:
    entity_id = eid("Deep", uid)
    depth = 2000
    attribute = '{"type": "Property", "value": 0, "sub": ' * depth + "0" + "}" * depth
    raw = f'{{"id": "{entity_id}", "type": "Deep", "a": {attribute}}}'.encode()
    # a JSON parser may refuse this depth (InvalidRequest) or the broker its content
    reply = client.post(ENTITIES, raw=raw)
    assert reply.status in (201, 400)
    if reply.status == 400:
        assert is_problem(reply, 400, BAD_DATA, INVALID)
        assert absent(client, entity_id)
    assert client.get("/version").status == 200


@pytest.mark.clause("5.6.2")
def test_update_of_missing_entity_or_attribute_is_404(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    assert is_problem(client.patch(entity_path(entity_id) + "/attrs", {"a": prop(1)}), 404,
                      NOT_FOUND)
    assert is_problem(client.patch(attr_path(entity_id, "a"), {"value": 1}), 404, NOT_FOUND)
    create(client, entity(entity_id, b=prop(1)))
    assert is_problem(client.patch(attr_path(entity_id, "a"), {"value": 1}), 404, NOT_FOUND)
    assert is_problem(client.delete(attr_path(entity_id, "a")), 404, NOT_FOUND)
    assert stored(client, entity_id) == entity(entity_id, b=prop(1))


@pytest.mark.clause("5.6.4")
@pytest.mark.parametrize("fragment", [
    {"value": None}, {"type": "Relationship", "value": 1}, {"observedAt": "not a time"},
    {"datasetId": "not a uri", "value": 1},
])
def test_invalid_partial_update_is_400_and_changes_nothing(client: Client, uid: str,
                                                           fragment: Any) -> None:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, a=prop(1)))
    reply = client.patch(attr_path(entity_id, "a"), fragment)
    assert is_problem(reply, 400, BAD_DATA, INVALID)
    assert stored(client, entity_id) == entity(entity_id, a=prop(1))


@pytest.mark.clause("5.6.1")
def test_ld_json_body_without_type_member_in_attribute(client: Client, uid: str) -> None:
    # an attribute with only "value" is not normalized NGSI-LD: type is mandatory there
    entity_id = eid("Bad", uid)
    reply = client.post(ENTITIES, {"id": entity_id, "type": "Bad", "a": {"value": 1, "x": 2,
                                                                         "type": 7}})
    assert is_problem(reply, 400, BAD_DATA)
    assert absent(client, entity_id)


@pytest.mark.clause("5.6.7")
@pytest.mark.parametrize("case", ["unclosed polygon", "observedAt not ISO 8601",
                                  "relationship object not a URI"])
def test_bad_entity_in_a_batch_is_not_half_written(client: Client, uid: str, case: str) -> None:
    good = entity(eid("Good", uid), a=prop(1))
    bad = {"id": eid("Bad", uid), "type": "Bad", "ok": prop(1), **BAD_ATTRIBUTES[case]}
    reply = client.post(BATCH + "/create", [good, bad])
    assert reply.status == 207
    assert reply.json["success"] == [good["id"]]
    assert [e["entityId"] for e in reply.json["errors"]] == [bad["id"]]
    assert reply.json["errors"][0]["error"]["type"] == BAD_DATA
    assert absent(client, bad["id"])


@pytest.mark.clause("5.5.11")
def test_duplicate_ids_in_an_upsert_batch_apply_in_order(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    reply = client.post(BATCH + "/upsert", [entity(entity_id, a=prop("first"), x=prop(1)),
                                            entity(entity_id, a=prop("second"))])
    assert reply.status == 201 and reply.json == [entity_id]
    # the default upsert replaces: the later instance wins as a whole
    assert stored(client, entity_id) == entity(entity_id, a=prop("second"))


@pytest.mark.clause("5.5.11")
def test_duplicate_ids_in_a_create_batch(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    reply = client.post(BATCH + "/create", [entity(entity_id, a=prop("first")),
                                            entity(entity_id, a=prop("second"))])
    assert reply.status == 207
    assert reply.json["success"] == [entity_id]
    assert [e["entityId"] for e in reply.json["errors"]] == [entity_id]
    assert stored(client, entity_id) == entity(entity_id, a=prop("first"))


@pytest.mark.clause("6.3.4")
@pytest.mark.parametrize("number", ["123456789012345678901234567890", "1e400", "-0.0"])
def test_extreme_numbers_are_kept_or_refused_cleanly(client: Client, uid: str,
                                                     number: str) -> None:
    entity_id = eid("Num", uid)
    raw = (f'{{"id": "{entity_id}", "type": "Num", "n": {{"type": "Property", '
           f'"value": {number}}}}}').encode()
    reply = client.post(ENTITIES, raw=raw)
    assert reply.status in (201, 400), (reply.status, reply.raw)
    if reply.status == 201:
        assert stored(client, entity_id)["n"]["value"] == float(number) or str(
            stored(client, entity_id)["n"]["value"]) == number
    else:
        assert is_problem(reply, 400, BAD_DATA, INVALID)
        assert absent(client, entity_id)


@pytest.mark.clause("6.3.4")
@pytest.mark.parametrize("raw", [b"", b" ", b"{}"])
def test_empty_create_body_is_400(client: Client, raw: bytes) -> None:
    reply = client.post(ENTITIES, raw=raw)
    assert is_problem(reply, 400, BAD_DATA, INVALID)


@pytest.mark.clause("5.6.2")
@pytest.mark.parametrize("raw", [b"", b"[]", b"5"])
def test_empty_or_non_object_fragment_is_400(client: Client, uid: str, raw: bytes) -> None:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, a=prop(1)))
    for method in ("PATCH", "POST"):
        reply = client.request(method, entity_path(entity_id) + "/attrs", raw=raw)
        assert is_problem(reply, 400, BAD_DATA, INVALID), (method, reply.status)
    assert stored(client, entity_id) == entity(entity_id, a=prop(1))
