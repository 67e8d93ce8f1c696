"""Amending Entity data to an earlier NGSI-LD version (clause 4.3.6.8)."""

from __future__ import annotations

import copy

import pytest

from ngsi_ld.versions import NATIVE, amend_entity, conformant, format_version, parse_version

ENTITY = {
    "id": "urn:e:1",
    "type": ["https://ex.org/A", "https://ex.org/B"],
    "scope": ["/a"],
    "expiresAt": "2100-01-01T00:00:00.000Z",
    "attrs": {
        "speed": [
            {"type": "Property", "value": 1, "datasetId": "urn:ds:1"},
            {"type": "Property", "value": 2, "observedAt": "2020-01-01T00:00:00.000Z",
             "unitCode": "KMH", "expiresAt": "2100-01-01T00:00:00.000Z"},
        ],
        "kind": [{"type": "VocabProperty", "vocab": "https://ex.org/Car"}],
        "name": [{"type": "LanguageProperty", "languageMap": {"en": "car"}}],
        "spec": [{"type": "JsonProperty", "json": {"a": 1}}],
        "seats": [{"type": "ListProperty", "valueList": [1, 2]}],
        "route": [{"type": "ListRelationship", "objectList": ["urn:s:1"]}],
        "owner": [{"type": "Relationship", "object": "urn:p:1", "objectType": "https://ex.org/P",
                   "sub": {"https://ex.org/since": {"type": "VocabProperty",
                                                     "vocab": "https://ex.org/Y"}}}],
    },
}


def compact(iri: str) -> str:
    return iri.rsplit("/", 1)[-1]


def test_the_native_version_and_later_leave_the_entity_as_it_is() -> None:
    assert amend_entity(ENTITY, NATIVE) == (ENTITY, False)
    assert amend_entity(ENTITY, (2, 0)) == (ENTITY, False)


def test_one_eight_drops_what_1_9_introduced() -> None:
    kept = copy.deepcopy(ENTITY)
    got, changed = amend_entity(ENTITY, (1, 8), compact)
    assert changed and kept == ENTITY  # the input is not modified
    assert "expiresAt" not in got and "expiresAt" not in got["attrs"]["speed"][1]
    assert got["attrs"]["kind"] == [{"type": "VocabProperty", "vocab": "https://ex.org/Car"}]


def test_before_1_8_new_kinds_fall_back() -> None:
    got, _ = amend_entity(ENTITY, (1, 5), compact)
    attrs = got["attrs"]
    assert attrs["kind"] == [{"type": "Property", "value": "Car"}]
    assert attrs["spec"] == [{"type": "Property", "value": {"a": 1}}]
    assert attrs["seats"] == [{"type": "Property", "value": [1, 2]}]
    assert attrs["route"] == [{"type": "Relationship", "object": ["urn:s:1"]}]
    assert attrs["name"] == ENTITY["attrs"]["name"]  # LanguageProperty is 1.4
    assert "objectType" not in attrs["owner"][0]
    assert attrs["owner"][0]["sub"]["https://ex.org/since"] == {"type": "Property", "value": "Y"}
    assert got["scope"] == ["/a"] and len(attrs["speed"]) == 2


def test_before_1_4_scope_and_language_properties_go() -> None:
    got, _ = amend_entity(ENTITY, (1, 3), compact)
    assert "scope" not in got
    assert got["attrs"]["name"] == [{"type": "Property", "value": {"en": "car"}}]
    assert got["attrs"]["speed"][1]["unitCode"] == "KMH"


def test_1_0_keeps_one_type_and_the_default_instance() -> None:
    got, _ = amend_entity(ENTITY, (1, 0), compact)
    assert got["type"] == ["https://ex.org/A"]
    assert got["attrs"]["speed"] == [{"type": "Property", "value": 2}]


def test_an_entity_without_anything_newer_is_not_changed() -> None:
    plain = {"id": "urn:e:2", "type": ["T"], "attrs": {"a": [{"type": "Property", "value": 1}]}}
    assert amend_entity(plain, (1, 0)) == (plain, False)


@pytest.mark.parametrize("text, version", [
    ("1.5", (1, 5)), (" 1.9.1 ", (1, 9)), ("10.0", (10, 0)),
    ("1", None), ("x.y", None), ("1.5a", None), ("", None), ("1..5", None),
])
def test_parse_version(text: str, version: tuple[int, int] | None) -> None:
    assert parse_version(text) == version


def test_conformant_is_at_most_the_native_version() -> None:
    assert conformant((1, 5)) == (1, 5)
    assert format_version(conformant((3, 0))) == format_version(NATIVE)
