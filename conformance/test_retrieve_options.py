"""5.7.1 Retrieve Entity options: projections (4.21), format, GeoJSON @context and
the Prefer header (6.3.6: body=json, ngsi-ld=<version> with the 4.3.6.8 fallbacks)."""

from __future__ import annotations

import pytest

from conformance.client import Client
from conformance.data import (
    BAD_DATA,
    ENTITIES,
    INVALID,
    NOT_FOUND,
    create,
    eid,
    entity,
    get,
    is_problem,
    prop,
    rel,
    stored,
)

GEO = {"Accept": "application/geo+json"}
POINT = {"type": "Point", "coordinates": [2.35, 48.85]}


def thing(client: Client, uid: str) -> str:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, "Thing", name=prop("n"), speed=prop(3), owner=rel("urn:x:1"),
                          location={"type": "GeoProperty", "value": POINT}))
    return entity_id


@pytest.mark.clause("5.7.1.4")
@pytest.mark.parametrize("query", [
    "attrs=unknown",                        # none of the attributes asked for
    "pick=unknown",                         # nothing picked
    "omit=id,type,name,speed,owner,location",  # everything omitted
])
def test_a_retrieval_left_with_nothing_is_resource_not_found(client: Client, uid: str,
                                                              query: str) -> None:
    entity_id = thing(client, uid)
    assert is_problem(get(client, entity_id, query), 404, NOT_FOUND)
    assert stored(client, entity_id, "attrs=unknown,speed")["speed"] == prop(3)
    assert stored(client, entity_id, "pick=id") == {"id": entity_id}


@pytest.mark.clause("4.21")
def test_pick_with_a_pipe_or_a_comma(client: Client, uid: str) -> None:
    entity_id = thing(client, uid)
    comma = stored(client, entity_id, "pick=name,speed")
    assert comma == stored(client, entity_id, "pick=name|speed") == {
        "name": prop("n"), "speed": prop(3)}


@pytest.mark.clause("4.21")
@pytest.mark.parametrize("query", [
    "pick=name&attrs=speed", "omit=name&attrs=speed", "pick=name&omit=speed",
    "pick=id;name", "pick=id,owner{name", "pick=id,owner{{name}", "pick=id,,name",
    "pick=id,owner{,name}", "pick=id,owner{}", "pick=name||speed", "omit=",
])
def test_bad_projections_are_bad_request_data(client: Client, uid: str, query: str) -> None:
    assert is_problem(get(client, thing(client, uid), query), 400, BAD_DATA)


@pytest.mark.clause("6.3.7")
def test_format_takes_precedence_over_options(client: Client, uid: str) -> None:
    entity_id = thing(client, uid)
    assert stored(client, entity_id, "format=keyValues&options=normalized")["speed"] == 3
    assert stored(client, entity_id, "format=normalized&options=keyValues,sysAttrs")["speed"][
        "value"] == 3


@pytest.mark.clause("6.3.20")
@pytest.mark.parametrize("query", ["format=fancy", "options=fancy", "options=keyValues,fancy",
                                   "format=keyValues&options=fancy"])
def test_an_invalid_format_or_option_is_invalid_request(client: Client, uid: str,
                                                        query: str) -> None:
    assert is_problem(get(client, thing(client, uid), query), 400, INVALID)


@pytest.mark.clause("5.7.1.4")
def test_geometry_property_needs_geojson(client: Client, uid: str) -> None:
    entity_id = thing(client, uid)
    reply = get(client, entity_id, "geometryProperty=location",
                headers={"Accept": "application/ld+json"})
    assert is_problem(reply, 400, BAD_DATA)
    assert get(client, entity_id, "geometryProperty=location", headers=GEO).status == 200


@pytest.mark.clause("6.3.6")
def test_geojson_carries_the_context_in_the_body_unless_body_json_is_preferred(
        client: Client, uid: str) -> None:
    entity_id = thing(client, uid)
    feature = get(client, entity_id, headers=GEO)
    assert feature.json["type"] == "Feature" and feature.json["geometry"] == POINT
    assert "@context" in feature.json and feature.header("Link") is None
    collection = client.get(f"{ENTITIES}?type=Thing&id={entity_id}", headers=GEO)
    assert collection.json["type"] == "FeatureCollection" and "@context" in collection.json
    for reply in (get(client, entity_id, headers={**GEO, "Prefer": "body=json"}),
                  client.get(f"{ENTITIES}?type=Thing&id={entity_id}",
                             headers={**GEO, "Prefer": "body=json"})):
        assert "@context" not in reply.json and reply.header("Link")


def vocab_thing(client: Client, uid: str) -> str:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, "Thing", category={"type": "VocabProperty",
                                                        "vocab": "commercial"},
                          seats={"type": "ListProperty", "valueList": [1, 2]}))
    return entity_id


@pytest.mark.clause("4.3.6.8")
def test_an_earlier_version_is_answered_amended_with_203(client: Client, uid: str) -> None:
    entity_id = vocab_thing(client, uid)
    reply = get(client, entity_id, headers={"Prefer": "ngsi-ld=1.5"})
    assert reply.status == 203 and reply.header("Preference-Applied") == "ngsi-ld=1.5"
    assert reply.json["category"] == prop("commercial")
    assert reply.json["seats"] == prop([1, 2])
    query = client.get(f"{ENTITIES}?type=Thing&id={entity_id}", headers={"Prefer": "ngsi-ld=1.5"})
    assert query.status == 203 and query.json[0]["category"] == prop("commercial")


@pytest.mark.clause("4.3.6.8")
@pytest.mark.parametrize("prefer, applied", [
    ("ngsi-ld=1.9", "ngsi-ld=1.9"), ("NGSI-LD=\"2.0\"", "ngsi-ld=1.9"), ("respond-async", None),
])
def test_a_version_it_conforms_to_is_answered_unchanged(client: Client, uid: str, prefer: str,
                                                        applied: str | None) -> None:
    entity_id = vocab_thing(client, uid)
    reply = get(client, entity_id, headers={"Prefer": prefer})
    assert reply.status == 200 and reply.header("Preference-Applied") == applied
    assert reply.json["category"]["type"] == "VocabProperty"


@pytest.mark.clause("4.3.6.8")
def test_other_payloads_conform_as_they_are(client: Client) -> None:
    reply = client.get("/ngsi-ld/v1/types", headers={"Prefer": "ngsi-ld=1.0"})
    assert reply.status == 200 and reply.header("Preference-Applied") == "ngsi-ld=1.0"
