"""5.7.5 to 5.7.10: the entity types and attributes available (discovery)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from conformance.client import Client, link
from conformance.data import ENTITIES, NOT_FOUND, create, eid, entity, is_problem, prop, rel

TYPES = "/ngsi-ld/v1/types"
ATTRIBUTES = "/ngsi-ld/v1/attributes"
NS = "https://example.org/disco/"


def scene(client: Client, uid: str, context_server: Any) -> dict[str, str]:
    """Two types under a context of their own; returns the Link header."""
    url = context_server.add(f"/disco{uid}.jsonld", {"@context": {
        "Sensor": f"{NS}Sensor{uid}", "Gauge": f"{NS}Gauge{uid}",
        "reading": f"{NS}reading{uid}", "site": f"{NS}site{uid}"}})
    headers = {"Link": link(url)}
    create(client, entity(eid("Sensor", uid, 1), "Sensor", reading=prop(1),
                          site=rel("urn:ngsi-ld:Site:1")), headers=headers)
    create(client, {**entity(eid("Sensor", uid, 2), "Sensor"),
                    "reading": [prop(2), prop(3, datasetId="urn:ngsi-ld:Dataset:b")]},
           headers=headers)
    create(client, entity(eid("Gauge", uid), "Gauge",
                          reading={"type": "VocabProperty", "vocab": "high"}), headers=headers)
    return headers


@pytest.mark.clause("5.7.5")
def test_type_list(client: Client, uid: str, context_server: Any) -> None:
    headers = scene(client, uid, context_server)
    reply = client.get(TYPES, headers=headers)
    assert reply.status == 200
    body = reply.json
    assert body["type"] == "EntityTypeList" and body["id"].startswith("urn:")
    assert {"Sensor", "Gauge"} <= set(body["typeList"])
    # without the context the same types are full IRIs
    assert f"{NS}Sensor{uid}" in client.get(TYPES).json["typeList"]


@pytest.mark.clause("5.7.6")
def test_type_details(client: Client, uid: str, context_server: Any) -> None:
    headers = scene(client, uid, context_server)
    reply = client.get(TYPES + "?details=true", headers=headers)
    items = {item["typeName"]: item for item in reply.json}
    assert items["Sensor"] == {"id": f"{NS}Sensor{uid}", "type": "EntityType",
                               "typeName": "Sensor", "attributeNames": ["reading", "site"]}


@pytest.mark.clause("5.7.7")
def test_type_info(client: Client, uid: str, context_server: Any) -> None:
    headers = scene(client, uid, context_server)
    reply = client.get(TYPES + "/Sensor", headers=headers)
    assert reply.status == 200
    body = reply.json
    assert body["id"] == f"{NS}Sensor{uid}" and body["type"] == "EntityTypeInfo"
    assert body["typeName"] == "Sensor" and body["entityCount"] == 2
    details = {d["attributeName"]: d for d in body["attributeDetails"]}
    assert details["reading"] == {"id": f"{NS}reading{uid}", "type": "Attribute",
                                  "attributeName": "reading", "attributeTypes": ["Property"]}
    assert details["site"]["attributeTypes"] == ["Relationship"]


@pytest.mark.clause("5.7.7")
def test_unknown_type_is_404(client: Client, uid: str) -> None:
    assert is_problem(client.get(f"{TYPES}/Nothing{uid}"), 404, NOT_FOUND)


@pytest.mark.clause("5.7.8")
def test_attribute_list(client: Client, uid: str, context_server: Any) -> None:
    headers = scene(client, uid, context_server)
    body = client.get(ATTRIBUTES, headers=headers).json
    assert body["type"] == "AttributeList" and body["id"].startswith("urn:")
    assert {"reading", "site"} <= set(body["attributeList"])


@pytest.mark.clause("5.7.9")
def test_attribute_details(client: Client, uid: str, context_server: Any) -> None:
    headers = scene(client, uid, context_server)
    items = {i["attributeName"]: i for i in
             client.get(ATTRIBUTES + "?details=true", headers=headers).json}
    assert items["reading"] == {
        "id": f"{NS}reading{uid}", "type": "Attribute", "attributeName": "reading",
        "attributeCount": 4, "attributeTypes": ["Property", "VocabProperty"],
        "typeNames": ["Gauge", "Sensor"]}


@pytest.mark.clause("5.7.10")
def test_attribute_info(client: Client, uid: str, context_server: Any) -> None:
    headers = scene(client, uid, context_server)
    reply = client.get(ATTRIBUTES + "/site", headers=headers)
    assert reply.status == 200
    assert reply.json == {"id": f"{NS}site{uid}", "type": "Attribute", "attributeName": "site",
                          "attributeCount": 1, "attributeTypes": ["Relationship"],
                          "typeNames": ["Sensor"]}
    assert is_problem(client.get(f"{ATTRIBUTES}/nothing{uid}"), 404, NOT_FOUND)


@pytest.mark.clause("5.7.5")
def test_ld_json_discovery_carries_the_context(client: Client, uid: str,
                                               context_server: Any) -> None:
    scene(client, uid, context_server)
    reply = client.get(TYPES, headers={"Accept": "application/ld+json"})
    assert reply.status == 200 and "@context" in reply.json
    assert client.get(f"{ENTITIES}?type=Sensor").status == 200


@pytest.mark.clause("5.7.7")
def test_type_info_by_full_iri(client: Client, uid: str, context_server: Any) -> None:
    scene(client, uid, context_server)
    reply = client.get(f"{TYPES}/{quote(NS + 'Gauge' + uid, safe='')}")
    assert reply.status == 200, reply.raw
    assert reply.json["entityCount"] == 1
    assert reply.json["typeName"] == NS + "Gauge" + uid
