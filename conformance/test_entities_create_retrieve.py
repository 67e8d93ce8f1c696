"""5.6.1 Create Entity and 5.7.1 Retrieve Entity, with the representations of 4.5."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pytest

from conformance.client import Client, entity_path, link
from conformance.contexts_server import ContextServer
from conformance.data import (
    BAD_DATA,
    ENTITIES,
    EXISTS,
    NOT_FOUND,
    create,
    eid,
    entity,
    every_kind,
    get,
    is_problem,
    prop,
    rel,
    stored,
)


def _uris(objects: list[Any]) -> list[str]:
    return [o["object"] if isinstance(o, dict) else o for o in objects]


@pytest.mark.clause("5.6.1")
def test_create_answers_201_with_location(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    reply = client.post(ENTITIES, entity(entity_id, temperature=prop(1)))
    assert reply.status == 201
    assert not reply.raw.strip()
    location = reply.header("Location") or ""
    assert location.endswith(entity_path(entity_id)) or location.endswith(
        "/ngsi-ld/v1/entities/" + entity_id)
    # the Location resolves to the entity
    path = location[location.index("/ngsi-ld/"):]
    assert client.get(path).json["id"] == entity_id


@pytest.mark.clause("5.6.1")
def test_create_existing_id_is_409_already_exists(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, temperature=prop(1)))
    reply = client.post(ENTITIES, entity(entity_id, temperature=prop(2)))
    assert is_problem(reply, 409, EXISTS)
    assert stored(client, entity_id)["temperature"]["value"] == 1


@pytest.mark.clause("5.6.1")
def test_entity_without_attributes(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id))
    assert stored(client, entity_id) == {"id": entity_id, "type": "Thing"}


@pytest.mark.clause("5.6.1")
def test_every_attribute_kind_round_trips(client: Client, uid: str) -> None:
    sent = every_kind(eid("Thing", uid))
    create(client, sent)
    got = stored(client, sent["id"])
    for name in ("temperature", "owner", "members", "location", "name", "category", "config",
                 "readings", "installed", "status"):
        assert got[name] == sent[name], name
    # ListRelationship: the order of the objects is kept
    route = got["route"]
    assert route["type"] == "ListRelationship"
    assert _uris(route["objectList"]) == ["urn:ngsi-ld:Stop:b", "urn:ngsi-ld:Stop:a"]
    assert set(got) == set(sent)


@pytest.mark.clause("4.5.1")
def test_relationship_with_an_array_of_objects(client: Client, uid: str) -> None:
    targets = [f"urn:ngsi-ld:Person:{n}" for n in range(3)]
    entity_id = eid("Team", uid)
    create(client, entity(entity_id, "Team", members=rel(targets)))
    assert stored(client, entity_id)["members"] == rel(targets)


@pytest.mark.clause("4.5.5")
def test_multi_instance_attribute_with_dataset_ids(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    speed = [prop(10), prop(11, datasetId="urn:ngsi-ld:Dataset:gps"),
             prop(12, datasetId="urn:ngsi-ld:Dataset:radar")]
    create(client, entity(entity_id, speed=speed))
    got = stored(client, entity_id)["speed"]
    assert isinstance(got, list)
    assert sorted(got, key=lambda i: i["value"]) == speed


@pytest.mark.clause("5.6.1")
def test_client_system_attributes_are_ignored(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    old = "2000-01-01T00:00:00.000Z"
    create(client, entity(entity_id, createdAt=old, modifiedAt=old,
                          temperature=prop(1, createdAt=old, modifiedAt=old)))
    plain = stored(client, entity_id)
    assert "createdAt" not in plain and "modifiedAt" not in plain
    assert "createdAt" not in plain["temperature"]
    sys_attrs = stored(client, entity_id, "options=sysAttrs")
    for holder in (sys_attrs, sys_attrs["temperature"]):
        for member in ("createdAt", "modifiedAt"):
            stamp = datetime.fromisoformat(holder[member].replace("Z", "+00:00"))
            assert stamp.year > 2000, (member, holder[member])


@pytest.mark.clause("5.7.1")
def test_retrieve_unknown_entity_is_404(client: Client, uid: str) -> None:
    assert is_problem(get(client, eid("Nothing", uid)), 404, NOT_FOUND)


@pytest.mark.clause("5.7.1")
def test_retrieve_attrs_selects_attributes(client: Client, uid: str) -> None:
    sent = every_kind(eid("Thing", uid))
    create(client, sent)
    got = stored(client, sent["id"], "attrs=temperature,owner")
    assert got == {"id": sent["id"], "type": "Thing", "temperature": sent["temperature"],
                   "owner": sent["owner"]}


@pytest.mark.clause("5.7.1")
def test_retrieve_pick_and_omit(client: Client, uid: str) -> None:
    sent = every_kind(eid("Thing", uid))
    create(client, sent)
    picked = stored(client, sent["id"], "pick=id,temperature")
    assert picked == {"id": sent["id"], "temperature": sent["temperature"]}
    omitted = stored(client, sent["id"], "omit=type,temperature,location")
    assert set(omitted) == set(sent) - {"type", "temperature", "location"}
    assert client.get(entity_path(sent["id"]) + "?pick=id&omit=type").status == 400


@pytest.mark.clause("4.5.4")
@pytest.mark.parametrize("query", ["options=keyValues", "options=simplified",
                                   "format=keyValues", "format=simplified"])
def test_retrieve_simplified(client: Client, uid: str, query: str) -> None:
    sent = every_kind(eid("Thing", uid))
    create(client, sent)
    got = stored(client, sent["id"], query)
    assert got["id"] == sent["id"] and got["type"] == "Thing"
    assert got["temperature"] == 21.5
    assert got["owner"] == "urn:ngsi-ld:Person:alice"
    assert got["members"] == sent["members"]["object"]
    assert got["location"] == sent["location"]["value"]
    assert got["name"] == {"languageMap": sent["name"]["languageMap"]}
    assert got["category"] == {"vocab": sent["category"]["vocab"]}
    assert got["config"] == {"json": sent["config"]["json"]}
    # 4.5.4: a ListProperty or ListRelationship is the bare ordered array
    assert got["readings"] == [3, 1, 2]
    assert got["route"] == ["urn:ngsi-ld:Stop:b", "urn:ngsi-ld:Stop:a"]
    assert got["installed"] == sent["installed"]["value"]
    assert got["status"] == "ok"  # sub-attributes are not part of the simplified form


@pytest.mark.clause("4.5.1")
@pytest.mark.parametrize("query", ["options=normalized", "format=normalized", ""])
def test_retrieve_normalized_is_the_default(client: Client, uid: str, query: str) -> None:
    sent = every_kind(eid("Thing", uid))
    create(client, sent)
    assert stored(client, sent["id"], query) == stored(client, sent["id"])
    assert stored(client, sent["id"], query)["temperature"] == sent["temperature"]


@pytest.mark.clause("4.5.1")
@pytest.mark.parametrize("query", ["options=concise", "format=concise"])
def test_concise_is_lossless(client: Client, uid: str, query: str) -> None:
    sent = every_kind(eid("Thing", uid))
    create(client, sent)
    concise = stored(client, sent["id"], query)
    # "type" is left out of Properties; Relationships keep their "object"
    assert "type" not in (concise["status"] if isinstance(concise["status"], dict) else {})
    assert concise["owner"]["object"] == "urn:ngsi-ld:Person:alice"
    assert "type" not in concise["owner"]
    # a concise entity sent back creates the same entity
    copy_id = eid("Thing", uid, "copy")
    create(client, {**concise, "id": copy_id})
    original = stored(client, sent["id"])
    assert stored(client, copy_id) == {**original, "id": copy_id}


@pytest.mark.clause("4.15")
def test_lang_reduces_language_property(client: Client, uid: str) -> None:
    sent = every_kind(eid("Thing", uid))
    create(client, sent)
    got = stored(client, sent["id"], "lang=fr")
    assert got["name"] == {"type": "Property", "value": "Pont", "lang": "fr"}
    assert stored(client, sent["id"], "lang=fr&options=keyValues")["name"] == "Pont"
    # 4.15: lang=* is any language the broker holds, still one of them
    anyone = stored(client, sent["id"], "lang=*")["name"]
    assert anyone["type"] == "Property" and anyone["lang"] in sent["name"]["languageMap"]
    assert anyone["value"] == sent["name"]["languageMap"][anyone["lang"]]


@pytest.mark.clause("5.7.1")
def test_retrieve_by_dataset_id(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    gps = "urn:ngsi-ld:Dataset:gps"
    create(client, entity(entity_id, speed=[prop(10), prop(11, datasetId=gps)], other=prop(5)))
    got = stored(client, entity_id, "datasetId=urn:ngsi-ld:Dataset:gps")
    speed = got["speed"]
    instances = speed if isinstance(speed, list) else [speed]
    assert instances == [prop(11, datasetId="urn:ngsi-ld:Dataset:gps")]
    assert "other" not in got


@pytest.mark.clause("5.7.1")
def test_retrieve_with_type(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, temperature=prop(1)))
    assert get(client, entity_id, "type=Thing").status == 200
    assert is_problem(get(client, entity_id, "type=Other"), 404, NOT_FOUND)


@pytest.mark.clause("4.5.16")
def test_geojson_feature(client: Client, uid: str) -> None:
    sent = every_kind(eid("Thing", uid))
    sent["area"] = {"type": "GeoProperty", "value": {
        "type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}
    create(client, sent)
    reply = get(client, sent["id"], headers={"Accept": "application/geo+json"})
    assert reply.status == 200
    assert (reply.header("Content-Type") or "").startswith("application/geo+json")
    feature = reply.json
    assert feature["type"] == "Feature" and feature["id"] == sent["id"]
    assert feature["geometry"] == sent["location"]["value"]
    assert feature["properties"]["type"] == "Thing"
    assert feature["properties"]["temperature"] == sent["temperature"]
    other = get(client, sent["id"], "geometryProperty=area",
                headers={"Accept": "application/geo+json"}).json
    assert other["geometry"] == sent["area"]["value"]
    simple = get(client, sent["id"], "options=keyValues",
                 headers={"Accept": "application/geo+json"}).json
    assert simple["properties"]["temperature"] == 21.5


@pytest.mark.clause("6.3.5")
def test_context_in_link_header_for_json(client: Client, context_server: ContextServer,
                                         uid: str) -> None:
    url = context_server.add(f"/retrieve-{uid}.jsonld", {"@context": {
        "speed": f"https://example.org/{uid}/speed", "Car": f"https://example.org/{uid}/Car"}})
    entity_id = eid("Car", uid)
    create(client, entity(entity_id, "Car", speed=prop(80)), headers={"Link": link(url)})
    reply = get(client, entity_id, headers={"Link": link(url), "Accept": "application/json"})
    assert reply.json == {"id": entity_id, "type": "Car", "speed": prop(80)}
    assert url in (reply.header("Link") or "")
    ld = get(client, entity_id, headers={"Link": link(url), "Accept": "application/ld+json"})
    context = ld.json["@context"]
    assert url in (context if isinstance(context, list) else [context])
    assert ld.json["speed"] == prop(80) and ld.header("Link") is None
    # without the user context: full IRIs, and the core context in the Link header
    plain = get(client, entity_id)
    assert plain.json["type"] == f"https://example.org/{uid}/Car"
    assert url not in (plain.header("Link") or "")


@pytest.mark.clause("4.16")
def test_entity_with_several_types(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    create(client, {"id": entity_id, "type": ["Building", "Landmark"], "height": prop(30)})
    got = stored(client, entity_id)
    assert sorted(got["type"]) == ["Building", "Landmark"]
    assert get(client, entity_id, "type=Landmark").status == 200


@pytest.mark.clause("4.18")
def test_scope_round_trips(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, scope=["/Madrid/Gardens", "/Company/A"], a=prop(1)))
    scope = stored(client, entity_id)["scope"]
    assert sorted(scope if isinstance(scope, list) else [scope]) == ["/Company/A",
                                                                    "/Madrid/Gardens"]


@pytest.mark.clause("4.5.1")
def test_more_values_round_trip(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    sent = entity(
        entity_id,
        target=rel("urn:ngsi-ld:Building:b1", objectType="Building"),
        names={"type": "LanguageProperty",
               "languageMap": {"en": ["Bridge", "Crossing"], "@none": "Puente"}},
        doc={"type": "JsonProperty", "json": [1, "two", {"three": [3]}, None]},
        rows={"type": "ListProperty", "valueList": [{"a": 1}, [1, 2], "x"]},
        line={"type": "GeoProperty", "value": {"type": "LineString",
                                               "coordinates": [[0, 0], [1, 1], [2, 0]]}},
        holed={"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
            [[2, 2], [3, 2], [3, 3], [2, 2]]]}},
        corner={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [180, -90]}},
        text=prop("  spaces and ünïcödé ✓  "),
        zero=prop(0), flag=prop(False), nested=prop({"deep": {"er": [1, {"est": True}]}}),
    )
    create(client, sent)
    assert stored(client, entity_id) == sent


@pytest.mark.clause("5.6.1")
def test_concurrent_creates_of_one_id(client: Client, uid: str) -> None:
    entity_id = eid("Race", uid)
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        barrier.wait()
        statuses.append(client.post(ENTITIES, entity(entity_id, "Race", n=prop(n))).status)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409, 409, 409]


@pytest.mark.clause("5.7.1")
@pytest.mark.parametrize("query", ["options=bogus", "format=bogus", "pick="])
def test_invalid_retrieve_parameters_are_400(client: Client, uid: str, query: str) -> None:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, a=prop(1)))
    reply = get(client, entity_id, query)
    assert reply.status == 400 and (reply.problem_type or "").startswith(
        "https://uri.etsi.org/ngsi-ld/errors/")


@pytest.mark.clause("5.7.1")
def test_sys_attrs_on_sub_attributes_and_with_key_values(client: Client, uid: str) -> None:
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, status=prop("ok", quality=prop(1))))
    got = stored(client, entity_id, "options=sysAttrs")
    assert "createdAt" in got["status"]["quality"]
    simple = stored(client, entity_id, "options=sysAttrs,keyValues")
    assert simple["status"] == "ok"


@pytest.mark.clause("4.5.20")
def test_vocab_property_terms_expand_and_compact(client: Client, context_server: ContextServer,
                                                 uid: str) -> None:
    road = f"https://example.org/{uid}/road"
    url = context_server.add(f"/vocab-{uid}.jsonld", {"@context": {"road": road}})
    entity_id = eid("Thing", uid)
    sent = entity(entity_id, category={"type": "VocabProperty", "vocab": "road"})
    create(client, sent, headers={"Link": link(url)})
    assert stored(client, entity_id, headers={"Link": link(url)})["category"]["vocab"] == "road"
    assert stored(client, entity_id)["category"]["vocab"] == road


@pytest.mark.clause("5.6.1")
@pytest.mark.parametrize("template", ["https://example.org/things/{uid}",
                                      "urn:ngsi-ld:Thing:{uid}/part/1",
                                      "urn:ngsi-ld:Thing:{uid}:a%20b"])
def test_ids_needing_percent_encoding(client: Client, uid: str, template: str) -> None:
    entity_id = template.format(uid=uid)
    reply = create(client, entity(entity_id, a=prop(1)))
    location = reply.header("Location") or ""
    assert client.get(location[location.index("/ngsi-ld/"):]).json["id"] == entity_id
    assert stored(client, entity_id)["id"] == entity_id
    assert client.patch(entity_path(entity_id) + "/attrs/a", {"value": 2}).status == 204
    assert client.delete(entity_path(entity_id)).status == 204
    assert get(client, entity_id).status == 404


@pytest.mark.clause("4.6.3")
@pytest.mark.parametrize("when", ["2024-01-02T04:04:05+01:00", "2024-01-02T04:04Z",
                                  "2024-13-02T04:04:05Z", "yesterday"])
def test_observed_at_is_a_utc_date_time(client: Client, uid: str, when: str) -> None:
    """4.6.3: "The trailing timestamp component ... shall always be equal to the
    character Z"; every component is present."""
    entity_id = eid("Thing", uid)
    reply = client.post(ENTITIES, entity(entity_id, a=prop(1, observedAt=when)))
    assert is_problem(reply, 400, BAD_DATA), reply.raw
    assert get(client, entity_id).status == 404


@pytest.mark.clause("6.3.5")
def test_inline_context_round_trip_as_ld_json(client: Client, uid: str) -> None:
    context = {"speed": f"https://example.org/{uid}/speed"}
    entity_id = eid("Car", uid)
    body = {**entity(entity_id, "Car", speed=prop(3)), "@context": context}
    assert client.post(ENTITIES, body, content_type="application/ld+json").status == 201
    assert f"https://example.org/{uid}/speed" in stored(client, entity_id)


@pytest.mark.clause("4.5.2")
@pytest.mark.parametrize("value", [
    {"type": ["Point"], "coordinates": [1, 2]},
    {"type": {"kind": "Point"}},
    {"type": "NotAGeometry", "coordinates": [1, 2]},
])
def test_object_values_with_any_type_member_are_kept(
    client: Client, uid: str, value: dict[str, Any]
) -> None:
    """A Property's value may be any JSON object, even one whose "type" is not a string."""
    entity_id = eid("Thing", uid)
    create(client, entity(entity_id, shape=prop(value)))
    assert stored(client, entity_id)["shape"]["value"] == value
    appended = {"other": prop(value)}
    assert client.post(entity_path(entity_id) + "/attrs", appended).status == 204
    assert stored(client, entity_id, "options=keyValues")["other"] == value
