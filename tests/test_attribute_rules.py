"""The v1.9.1 member rules of attributes (clauses 4.5.1, 4.5.2.2, 4.5.3.2, 4.5.5, 4.5.24,
4.6.3, 4.7, 5.2.32, 5.5.4) and of entities (4.4, 4.22)."""

from __future__ import annotations

from typing import Any

import pytest

from ngsi_ld.attributes import NULL, parse_attribute
from ngsi_ld.entity import parse_entity, parse_fragment
from ngsi_ld.errors import BadRequestData
from ngsi_ld.instances import merge_instance, merge_patch

POINT = {"type": "Point", "coordinates": [17.1, 48.7]}
PROOF_VALUE = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022", "proofValue": "z"}
T0 = "2026-01-01T00:00:00.000Z"


def one(name: str, raw: Any, **kw: Any) -> dict[str, Any]:
    [instance] = parse_attribute(name, raw, **kw)
    return instance


@pytest.mark.parametrize(
    ("name", "raw", "needle"),
    [
        # 4.5.1 / 5.5.7: no embedded @context in an attribute
        ("speed", {"type": "Property", "value": 1, "@context": {"speed": "x:y"}}, "@context"),
        ("speed", {"value": 1, "sub": {"value": 2, "@context": {}}}, "@context"),
        # 4.5.2.2 / 4.5.3.2: output-only and inline-retrieval members
        ("speed", {"type": "Property", "value": 1, "previousValue": 0}, "previousValue"),
        ("rel", {"type": "Relationship", "object": "urn:a:1", "previousObject": "urn:a:0"},
         "previousObject"),
        ("rel", {"type": "Relationship", "object": "urn:a:1", "entity": {"id": "urn:a:1"}},
         "entity"),
        # 4.5.2.2: the sealed members belong to ngsildproof only
        ("speed", {"type": "Property", "value": 1, "entityIdSealed": "urn:a:1"}, "ngsildproof"),
        ("speed", {"type": "Property", "value": 1, "entityTypeSealed": "T"}, "ngsildproof"),
        ("ngsildproof", {"type": "Property", "value": "not-a-proof"}, "proof"),
        ("ngsildproof", {"type": "Property", "value": PROOF_VALUE, "entityTypeSealed": 42},
         "entityTypeSealed"),
        # 4.5.3.2 and 4.5.24.2: unitless kinds
        ("rel", {"type": "Relationship", "object": "urn:a:1", "unitCode": "MTR"}, "unitCode"),
        ("js", {"type": "JsonProperty", "json": {"a": 1}, "unitCode": "MTR"}, "unitCode"),
        ("js", {"type": "JsonProperty", "json": 5}, "json"),
        # 4.5.5: a datasetId is never the NGSI-LD Null
        ("speed", {"type": "Property", "value": 1, "datasetId": NULL}, "datasetId"),
        # 4.6.3 and 4.7.1: no GeometryCollection, and location is a GeoProperty
        ("location", {"type": "GeoProperty", "value": {
            "type": "GeometryCollection", "geometries": [POINT]}}, "GeometryCollection"),
        ("location", {"type": "Property", "value": 7}, "GeoProperty"),
        ("location", 7, "GeoProperty"),
        ("location", {"type": "GeoProperty", "value": "not a geometry"}, "geometry"),
        # 5.2.32: a LanguageProperty's valueType is langString
        ("name", {"type": "LanguageProperty", "languageMap": {"en": "x"},
                  "valueType": "xsd:string"}, "langString"),
        # 4.8 and 4.22: temporal properties are UTC DateTimes
        ("speed", {"type": "Property", "value": 1, "observedAt": "2026-08-10T12:00:00+02:00"},
         "observedAt"),
        ("speed", {"type": "Property", "value": 1, "expiresAt": "2026-13-45T00:00:00Z"},
         "expiresAt"),
        ("speed", {"type": "Property", "value": 1, "expiresAt": "not-a-date"}, "expiresAt"),
        # 5.5.4: the NGSI-LD Null inside a Property value
        ("address", {"type": "Property", "value": {"country": NULL}}, "null"),
        ("address", {"type": "Property", "value": {"geo": {"country": NULL}}}, "null"),
        ("address", {"geo": {"country": NULL}}, "null"),
    ],
)
def test_invalid_members(name: str, raw: Any, needle: str) -> None:
    with pytest.raises(BadRequestData) as err:
        parse_attribute(name, raw)
    assert needle in err.value.detail


def test_the_null_inside_a_value_is_refused_in_updates_but_not_in_merges() -> None:
    raw = {"type": "Property", "value": {"street": "Pariser Platz", "country": NULL}}
    with pytest.raises(BadRequestData):
        parse_attribute("address", raw, allow_null=True)
    assert one("address", raw, allow_null=True, null_in_objects=True)["value"] == raw["value"]


def test_members_kept_as_sent() -> None:
    raw = {"type": "Property", "value": 1, "valueType": "xsd:double",
           "expiresAt": "2100-01-01T00:00:00Z", "observedAt": "2020-01-01T00:00:00.5Z"}
    assert one("speed", raw) == raw
    lang = {"type": "LanguageProperty", "languageMap": {"en": "x"}, "valueType": "langString"}
    assert one("name", lang) == lang
    rel = {"type": "Relationship", "object": "urn:a:1", "objectType": "Parking"}
    assert one("isParked", rel) == rel


def test_ngsildproof_keeps_its_sealed_members() -> None:
    raw = {"type": "Property", "value": PROOF_VALUE, "entityIdSealed": "urn:ngsi-ld:V:1",
           "entityTypeSealed": "Vehicle"}
    assert one("ngsildproof", raw) == raw


def test_dataset_id_none_is_the_default_instance() -> None:
    # 4.5.5.1: "datasetId": "@none" designates the default instance
    instances = parse_attribute("speed", [
        {"type": "Property", "value": 55, "datasetId": "@none"},
        {"type": "Property", "value": 11, "datasetId": "urn:d:1"},
    ])
    assert instances[0] == {"type": "Property", "value": 55}
    with pytest.raises(BadRequestData, match="default instance"):
        parse_attribute("speed", [{"value": 1}, {"value": 2, "datasetId": "@none"}])


def test_a_geometry_may_come_as_a_json_string() -> None:
    # 4.7.2: accepted if it parses into a valid geometry, kept as the object
    raw = {"type": "GeoProperty", "value": '{"type": "Point", "coordinates": [17.1, 48.7]}'}
    assert one("location", raw)["value"] == POINT
    assert one("location", {"type": "Property", "value": POINT})["value"] == POINT


def test_an_attribute_fragment_needs_no_type_nor_main_member() -> None:
    fragment = {"providedBy": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}}
    inst = one("isParked", fragment, fragment=True)
    assert "type" not in inst and inst["sub"]["providedBy"]["object"] == "urn:ngsi-ld:Person:1"
    assert one("speed", {"unitCode": "KMH"}, fragment=True) == {"unitCode": "KMH"}
    assert one("speed", {"value": 3}, fragment=True) == {"type": "Property", "value": 3}


def test_merge_goes_into_json_object_values() -> None:
    # 5.5.12 EXAMPLE 2
    old = {"type": "Property", "value": {"street": "Straße des 17. Juni", "city": "Berlin",
                                         "country": "Germany"}, "createdAt": T0}
    patch = {"type": "Property", "value": {"street": "Pariser Platz", "country": NULL}}
    merged = merge_instance(old, patch, T0, deep=True)
    assert merged["value"] == {"street": "Pariser Platz", "city": "Berlin"}
    replaced = merge_instance(old, patch, T0, deep=False)
    assert replaced["value"] == patch["value"]
    assert merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": NULL}, "d": [1]}) == {
        "a": {"c": 2}, "d": [1]}


# -- entities ---------------------------------------------------------------------------
def test_json_ld_keywords_stand_for_id_and_type() -> None:
    # 4.4: @id and @type may be used in requests
    entity = parse_entity({"@id": "urn:ngsi-ld:V:1", "@type": "Vehicle", "speed": 42})
    assert entity["id"] == "urn:ngsi-ld:V:1" and entity["type"] == ["Vehicle"]


@pytest.mark.parametrize("body", [
    {"id": "urn:ngsi-ld:null", "type": "Vehicle"},
    {"id": "urn:ngsi-ld:V:1", "type": "type"},
    {"id": "urn:ngsi-ld:V:1", "type": ["Vehicle", "id"]},
    {"id": "urn:ngsi-ld:V:1", "type": "Vehicle", "expiresAt": "soon"},
    {"id": "urn:ngsi-ld:V:1", "type": "Vehicle", "expiresAt": "2100-01-01T00:00:00+01:00"},
    {"id": "urn:ngsi-ld:V:1", "type": "Vehicle", "scope": NULL},
])
def test_invalid_entities(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        parse_entity(body)


def test_entity_expiry_is_kept_and_removable_by_merge() -> None:
    # 4.22
    entity = parse_entity({"id": "urn:a:1", "type": "T", "expiresAt": "2100-01-01T00:00:00Z"})
    assert entity["expiresAt"] == "2100-01-01T00:00:00Z"
    assert parse_fragment({"expiresAt": NULL}, merge=True).expires_at == NULL
    with pytest.raises(BadRequestData):
        parse_fragment({"expiresAt": NULL})
