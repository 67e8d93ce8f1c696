"""ActiveContext: term expansion/compaction and entity renaming on the internal form."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld import ActiveContext, compile_context, core_context_url

CORE = core_context_url("1.8")
NGSI = "https://uri.etsi.org/ngsi-ld/"
DEFAULT = NGSI + "default-context/"
EX = "https://example.org/"
USER = {
    "ex": EX,
    "speed": "ex:speed",
    "Car": "ex:Car",
    "brand": "http://schema.org/brand",
    "dropped": None,
}


@pytest.fixture(scope="module")
def ctx() -> ActiveContext:
    return compile_context(USER, {}, CORE)


def car() -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:Car:1",
        "type": ["Car", "Vehicle"],
        "scope": ["/a/b"],
        "attrs": {
            "speed": [
                {"type": "Property", "value": 80, "unitCode": "KMH",
                 "observedAt": "2026-11-22T00:00:00.000Z",
                 "sub": {"accuracy": {"type": "Property", "value": 1,
                                      "sub": {"ex:method": {"type": "Property", "value": "gps"}}}}},
                {"type": "Property", "value": 79, "datasetId": "urn:ngsi-ld:Dataset:b"},
            ],
            "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:Person:1",
                       "objectType": "Person"}],
            "brand": [{"type": "VocabProperty", "vocab": ["Toyota", "ex:Lexus"]}],
            "serviced": [{"type": "Property",
                          "value": {"@type": "DateTime", "@value": "2026-01-01T00:00:00.000Z"}}],
            "location": [{"type": "GeoProperty",
                          "value": {"type": "Point", "coordinates": [1, 2]}}],
            "extra": [{"type": "Property", "value": {"speed": 1, "nested": {"Car": 2}}}],
            "http://other.org/attr": [{"type": "JsonProperty", "json": {"type": "Car"}}],
        },
    }  # fmt: skip


def test_expand_term(ctx: ActiveContext) -> None:
    assert ctx.expand_term("speed") == EX + "speed"
    assert ctx.expand_term("ex:wheel") == EX + "wheel"
    assert ctx.expand_term("ngsi-ld:foo") == NGSI + "foo"
    assert ctx.expand_term("unknown") == DEFAULT + "unknown"
    assert ctx.expand_term("http://other.org/x") == "http://other.org/x"
    assert ctx.expand_term("urn:ngsi-ld:x") == "urn:ngsi-ld:x"
    assert ctx.expand_term("DateTime") == NGSI + "DateTime"
    assert ctx.expand_term("location") == NGSI + "location"


def test_compact_iri(ctx: ActiveContext) -> None:
    assert ctx.compact_iri(EX + "speed") == "speed"
    assert ctx.compact_iri(EX + "wheel") == "ex:wheel"
    assert ctx.compact_iri(DEFAULT + "unknown") == "unknown"
    assert ctx.compact_iri(NGSI + "foo") == "ngsi-ld:foo"
    assert ctx.compact_iri("http://other.org/x") == "http://other.org/x"
    assert ctx.compact_iri(NGSI + "DateTime") == "DateTime"
    # A vocab-relative word that is also a term must stay an IRI-ish form, not the word.
    assert ctx.compact_iri(DEFAULT + "speed") != "speed"


def test_term_mapped_to_null_is_refused(ctx: ActiveContext) -> None:
    with pytest.raises(BadRequestData, match="dropped"):
        ctx.expand_term("dropped")


def test_expand_entity_renames_names_only(ctx: ActiveContext) -> None:
    entity = car()
    before = copy.deepcopy(entity)
    out = ctx.expand_entity(entity)
    assert entity == before
    assert out["id"] == "urn:ngsi-ld:Car:1"
    assert out["scope"] == ["/a/b"]
    assert out["type"] == [EX + "Car", DEFAULT + "Vehicle"]
    attrs = out["attrs"]
    assert set(attrs) == {
        EX + "speed", DEFAULT + "owner", "http://schema.org/brand", DEFAULT + "serviced",
        NGSI + "location", DEFAULT + "extra", "http://other.org/attr",
    }  # fmt: skip
    speed = attrs[EX + "speed"]
    assert [i["value"] for i in speed] == [80, 79]
    assert speed[0]["unitCode"] == "KMH"
    assert speed[1]["datasetId"] == "urn:ngsi-ld:Dataset:b"
    accuracy = speed[0]["sub"][DEFAULT + "accuracy"]
    assert list(accuracy["sub"]) == [EX + "method"]
    owner = attrs[DEFAULT + "owner"][0]
    assert owner["object"] == "urn:ngsi-ld:Person:1"
    assert owner["objectType"] == DEFAULT + "Person"
    assert attrs["http://schema.org/brand"][0]["vocab"] == [DEFAULT + "Toyota", EX + "Lexus"]
    assert attrs[DEFAULT + "serviced"][0]["value"]["@type"] == NGSI + "DateTime"
    assert attrs[NGSI + "location"][0]["value"] == {"type": "Point", "coordinates": [1, 2]}
    # Values that are JSON objects are kept as sent (their keys are not names).
    assert attrs[DEFAULT + "extra"][0]["value"] == {"speed": 1, "nested": {"Car": 2}}
    assert attrs["http://other.org/attr"][0]["json"] == {"type": "Car"}


def test_compact_entity_inverts_expand_entity(ctx: ActiveContext) -> None:
    entity = car()
    expanded = ctx.expand_entity(entity)
    frozen = copy.deepcopy(expanded)
    assert ctx.compact_entity(expanded) == entity
    assert expanded == frozen


def test_attrs_alone(ctx: ActiveContext) -> None:
    attrs = car()["attrs"]
    assert ctx.compact_attrs(ctx.expand_attrs(attrs)) == attrs
    assert EX + "speed" in ctx.expand_attrs(attrs)


def test_two_names_for_one_iri_are_refused(ctx: ActiveContext) -> None:
    entity = {"id": "urn:a", "type": ["Car"], "attrs": {
        "speed": [{"type": "Property", "value": 1}],
        "ex:speed": [{"type": "Property", "value": 2}],
    }}  # fmt: skip
    with pytest.raises(BadRequestData, match="speed"):
        ctx.expand_entity(entity)
    sub = {"id": "urn:a", "type": ["Car"], "attrs": {"a": [{"type": "Property", "value": 1, "sub": {
        "brand": {"type": "Property", "value": 1},
        "http://schema.org/brand": {"type": "Property", "value": 2},
    }}]}}  # fmt: skip
    with pytest.raises(BadRequestData, match="sub-attributes"):
        ctx.expand_entity(sub)


@pytest.mark.parametrize(
    "entity",
    [
        {"id": "urn:a", "type": [["nested"]]},
        {"id": "urn:a", "type": ["Car"], "attrs": {"a": ["not an instance"]}},
        {"id": "urn:a", "type": ["Car"], "attrs": {"a": [{"type": "Property", "sub": [1]}]}},
        {"id": "urn:a", "type": [3]},
    ],
)
def test_malformed_internal_form_is_bad_request_data(
    ctx: ActiveContext, entity: dict[str, Any]
) -> None:
    with pytest.raises(BadRequestData):
        ctx.expand_entity(entity)


WORD = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,10}", fullmatch=True)


@given(WORD)
def test_unknown_words_round_trip_through_vocab(word: str) -> None:
    ctx = compile_context(USER, {}, CORE)
    if word in ctx.definitions:
        return
    iri = ctx.expand_term(word)
    assert iri == DEFAULT + word
    assert ctx.compact_iri(iri) == word


@given(WORD)
def test_prefixed_names_round_trip(word: str) -> None:
    ctx = compile_context(USER, {}, CORE)
    iri = ctx.expand_term("ex:" + word)
    assert iri == EX + word
    assert ctx.expand_term(ctx.compact_iri(iri)) == iri
