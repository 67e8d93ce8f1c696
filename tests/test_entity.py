"""Tests of ngsi_ld.entity: whole entities, fragments, stamping, Smart Data Models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.shared_data import smart_data_models_dir
from ngsi_ld.attributes import is_deletion
from ngsi_ld.entity import parse_attributes, parse_entity, parse_fragment, stamp
from ngsi_ld.errors import BadRequestData
from ngsi_ld.representation import render_entity

SDM = smart_data_models_dir()
NORMALIZED = sorted(SDM.glob("*/example-normalized.jsonld"))
KEY_VALUES = sorted(SDM.glob("*/example.jsonld"))
# The Catalogue example breaks the spec: Relationships with "value" instead of
# "object", and an empty string as a relationship target.
INVALID_EXAMPLES = {"Catalogue"}


def load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def test_minimal_entity() -> None:
    entity = parse_entity({"id": "urn:ngsi-ld:T:1", "type": "T", "@context": "http://x"})
    assert entity == {"id": "urn:ngsi-ld:T:1", "type": ["T"], "attrs": {}}


def test_full_entity() -> None:
    body = {
        "id": "http://example.org/things/1",
        "type": ["Building", "https://example.org/Shop", "Building"],
        "scope": "/Madrid/Gardens",
        "createdAt": "2000-01-01T00:00:00Z",
        "name": "Shop",
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
    }
    assert parse_entity(body) == {
        "id": "http://example.org/things/1",
        "type": ["Building", "https://example.org/Shop"],
        "scope": ["/Madrid/Gardens"],
        "attrs": {
            "name": [{"type": "Property", "value": "Shop"}],
            "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}],
        },
    }


def test_now_stamps_entity_attributes_and_sub_attributes() -> None:
    body = {"id": "urn:a:1", "type": "T", "p": {"value": 1, "q": {"value": 2}}}
    entity = parse_entity(body, now="2026-01-01T00:00:00.000Z")
    assert entity["createdAt"] == entity["modifiedAt"] == "2026-01-01T00:00:00.000Z"
    [p] = entity["attrs"]["p"]
    assert p["createdAt"] == p["modifiedAt"] == "2026-01-01T00:00:00.000Z"
    assert p["sub"]["q"]["createdAt"] == "2026-01-01T00:00:00.000Z"


def test_stamp_keeps_creation_time() -> None:
    entity = parse_entity({"id": "urn:a:1", "type": "T", "p": 1}, now="2026-01-01T00:00:00.000Z")
    stamp(entity, "2026-02-02T00:00:00.000Z")
    assert entity["createdAt"] == "2026-01-01T00:00:00.000Z"
    assert entity["modifiedAt"] == "2026-02-02T00:00:00.000Z"
    instances = [{"type": "Property", "value": 1}]
    stamp(instances, "2026-03-03T00:00:00.000Z")
    assert instances[0]["createdAt"] == "2026-03-03T00:00:00.000Z"


def test_empty_scope_means_no_scope() -> None:
    entity = parse_entity({"id": "urn:a:1", "type": "T", "scope": []})
    assert "scope" not in entity
    assert parse_fragment({"scope": []}).scope == []


def test_type_optional_when_not_required() -> None:
    assert "type" not in parse_entity({"id": "urn:a:1", "p": 1}, require_type=False)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ([], "JSON object"),
        ("urn:a:1", "JSON object"),
        ({"type": "T"}, "'id'"),
        ({"id": "not-a-uri", "type": "T"}, "not-a-uri"),
        ({"id": "urn:a b", "type": "T"}, "urn:a b"),
        ({"id": 5, "type": "T"}, "5"),
        ({"id": "urn:a:1"}, "'type'"),
        ({"id": "urn:a:1", "type": []}, "empty"),
        ({"id": "urn:a:1", "type": 3}, "3"),
        ({"id": "urn:a:1", "type": "bad type"}, "bad type"),
        ({"id": "urn:a:1", "type": ["T", None]}, "None"),
        ({"id": "urn:a:1", "type": "T", "scope": "Madrid"}, "Madrid"),
        ({"id": "urn:a:1", "type": "T", "scope": ["/a", "/b/#"]}, "/b/#"),
        ({"id": "urn:a:1", "type": "T", "scope": 1}, "scope"),
        ({"id": "urn:a:1", "type": "T", "observedAt": "2020-01-01T00:00:00Z"}, "observedAt"),
        ({"id": "urn:a:1", "type": "T", "value": 1}, "value"),
        ({"id": "urn:a:1", "type": "T", "bad name": 1}, "bad name"),
        ({"id": "urn:a:1", "type": "T", "p": None}, "'p'"),
        ({"id": "urn:a:1", "type": "T", "p": {"type": "Property"}}, "'p'"),
    ],
)
def test_invalid_entities(body: Any, needle: str) -> None:
    with pytest.raises(BadRequestData) as err:
        parse_entity(body)
    assert needle in err.value.detail


def test_key_values_entity() -> None:
    body = {
        "id": "urn:a:1",
        "type": "T",
        "loc": {"type": "Point", "coordinates": [1, 2]},
        "rel": "urn:b:1",
        "obj": {"value": 1},
    }
    attrs = parse_entity(body, key_values=True)["attrs"]
    assert attrs["loc"][0]["type"] == "GeoProperty"
    assert attrs["rel"] == [{"type": "Property", "value": "urn:b:1"}]
    assert attrs["obj"] == [{"type": "Property", "value": {"value": 1}}]


def test_fragment_returns_id_type_scope_and_attributes() -> None:
    fragment = parse_fragment({"id": "urn:a:1", "type": "T", "scope": ["/x"], "p": 1})
    assert (fragment.id, fragment.type, fragment.scope) == ("urn:a:1", ["T"], ["/x"])
    assert fragment.attrs == {"p": [{"type": "Property", "value": 1}]}
    assert parse_attributes({"p": 1, "@context": []}) == fragment.attrs


def test_merge_fragment_marks_deletions() -> None:
    attrs = parse_attributes({"gone": "urn:ngsi-ld:null", "kept": 1}, allow_null=True)
    assert is_deletion(attrs["gone"][0]) and not is_deletion(attrs["kept"][0])
    with pytest.raises(BadRequestData, match="'gone'"):
        parse_attributes({"gone": None})


@pytest.mark.parametrize("body", [None, [1], "x"])
def test_fragment_must_be_an_object(body: Any) -> None:
    with pytest.raises(BadRequestData, match="JSON object"):
        parse_attributes(body)


def test_fragment_id_is_checked() -> None:
    with pytest.raises(BadRequestData, match="URI"):
        parse_fragment({"id": "nope", "p": 1})


@pytest.mark.parametrize("path", NORMALIZED, ids=lambda p: p.parent.name)
def test_smart_data_models_normalized_examples(path: Path) -> None:
    body = load(path)
    if path.parent.name in INVALID_EXAMPLES:
        with pytest.raises(BadRequestData, match="'catalog'"):
            parse_entity(body)
        return
    entity = parse_entity(body)
    assert entity["id"] == body["id"]
    names = set(body) - {"id", "type", "@context"}
    assert set(entity["attrs"]) == names
    for fmt in ("normalized", "concise"):
        assert parse_entity(render_entity(entity, fmt=fmt)) == entity
    assert render_entity(entity) == {k: v for k, v in body.items() if k != "@context"}


@pytest.mark.parametrize("path", KEY_VALUES, ids=lambda p: p.parent.name)
def test_smart_data_models_key_values_examples(path: Path) -> None:
    body = load(path)
    entity = parse_entity(body, key_values=True)
    simplified = render_entity(entity, fmt="keyValues")
    assert simplified == {k: v for k, v in body.items() if k != "@context"}


def test_streetlight_typed_literal_and_nested_sub_property() -> None:
    entity = parse_entity(load(SDM / "Streetlight/example-normalized.jsonld"))
    [info] = entity["attrs"]["municipalityInfo"]
    assert info["sub"]["deviceInfo"]["value"]["deviceModel"]["brandName"] == "abc"
    [change] = entity["attrs"]["dateLastLampChange"]
    assert change["value"] == {"@type": "DateTime", "@value": "2016-07-08T08:02:21.753Z"}


def test_dataset_relationship_with_many_objects() -> None:
    entity = parse_entity(load(SDM / "Dataset/example-normalized.jsonld"))
    [dist] = entity["attrs"]["distribution"]
    assert dist["type"] == "Relationship" and len(dist["object"]) == 2


json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["id", "type", "scope", "value", "object", "p", "@context"])
            | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(json_bodies, st.booleans())
def test_any_json_body_is_an_entity_or_bad_request_data(body: Any, key_values: bool) -> None:
    try:
        entity = parse_entity(body, key_values=key_values, require_type=False)
    except BadRequestData as err:
        assert err.detail
    else:
        assert entity["id"] == body["id"]
