"""Tests of ngsi_ld.representation: normalized, concise, keyValues, GeoJSON, projections."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.entity import parse_entity
from ngsi_ld.representation import (
    best_language,
    render_attribute,
    render_entity,
    select_attributes,
    to_feature,
    to_feature_collection,
)

POINT = {"type": "Point", "coordinates": [1.5, 2.5]}
T0 = "2026-01-01T00:00:00.000Z"

# -- hypothesis strategies for the internal form -------------------------------------------
names = st.sampled_from(["temp", "a", "b_c", "x.1", "no-2", "ngsi-ld:p", "https://e.org/p#q"])
uris = st.builds("urn:ngsi-ld:{}:{}".format, st.sampled_from(["Car", "T"]), st.integers(0, 999))
scalars = (
    st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
# Keys that mean something to the concise parser, to catch ambiguous renderings.
keys = st.sampled_from(["value", "object", "type", "vocab", "datasetId"]) | st.text(max_size=4)
json_values = st.recursive(
    st.none() | scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)
values = json_values.filter(lambda v: v is not None)
geometries = st.builds(
    lambda lon, lat: {"type": "Point", "coordinates": [lon, lat]},
    st.floats(-180, 180, allow_nan=False),
    st.floats(-90, 90, allow_nan=False),
)
language_maps = st.dictionaries(
    st.sampled_from(["en", "fr", "de-CH", "@none"]),
    st.text() | st.lists(st.text(), min_size=1, max_size=2),
    min_size=1,
)
mains = st.one_of(
    st.fixed_dictionaries({"type": st.just("Property"), "value": values}),
    st.fixed_dictionaries({"type": st.just("GeoProperty"), "value": geometries}),
    st.fixed_dictionaries(
        {"type": st.just("Relationship"), "object": uris | st.lists(uris, min_size=1, max_size=3)},
        optional={"objectType": names},
    ),
    st.fixed_dictionaries({"type": st.just("LanguageProperty"), "languageMap": language_maps}),
    st.fixed_dictionaries(
        {"type": st.just("VocabProperty"), "vocab": names | st.lists(names, min_size=1, max_size=2)}
    ),
    st.fixed_dictionaries({"type": st.just("JsonProperty"), "json": values.filter(
        lambda v: isinstance(v, dict | list))}),
    st.fixed_dictionaries(
        {"type": st.just("ListProperty"), "valueList": st.lists(values, max_size=3)}
    ),
    st.fixed_dictionaries(
        {"type": st.just("ListRelationship"), "objectList": st.lists(uris, max_size=3)}
    ),
)
extras = st.fixed_dictionaries(
    {},
    optional={
        "observedAt": st.sampled_from(["2020-01-01T00:00:00Z", "2021-06-01T12:30:00.5Z"]),
        "unitCode": st.sampled_from(["CEL", "MTR"]),
    },
)


def _unitless(instance: dict[str, Any]) -> dict[str, Any]:
    # 4.5.3.2, 4.5.24.2: relationships and raw JSON carry no unitCode
    if instance["type"] in ("Relationship", "ListRelationship", "JsonProperty"):
        instance.pop("unitCode", None)
    return instance


def _instance(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    base = st.builds(lambda m, e: {**m, **e}, mains, extras).map(_unitless)
    if depth == 0:
        return base
    subs = st.dictionaries(names, _instance(depth - 1), max_size=2)
    return st.builds(lambda i, s: {**i, "sub": s} if s else i, base, subs)


def _attribute(instances: list[dict[str, Any]], ds: list[str | None]) -> list[dict[str, Any]]:
    return [{**inst, "datasetId": d} if d else inst for inst, d in zip(instances, ds, strict=False)]


dataset_ids = st.lists(st.none() | uris, min_size=1, max_size=3, unique=True)
attributes = dataset_ids.flatmap(
    lambda ds: st.lists(_instance(2), min_size=len(ds), max_size=len(ds)).map(
        lambda insts: _attribute(insts, ds)
    )
)
entities = st.builds(
    lambda id_, types, scope, attrs: {
        "id": id_,
        "type": types,
        **({"scope": scope} if scope else {}),
        "attrs": attrs,
    },
    uris,
    st.lists(names, min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(["/a", "/a/b", "/Madrid/Gardens"]), max_size=2, unique=True),
    st.dictionaries(names, attributes, max_size=4),
)


@settings(max_examples=200)
@given(entities, st.sampled_from(["normalized", "concise"]))
def test_parse_of_render_is_identity(entity: dict[str, Any], fmt: Any) -> None:
    assert parse_entity(render_entity(entity, fmt=fmt)) == entity


@settings(max_examples=50)
@given(entities)
def test_concise_never_carries_more_types_than_normalized(entity: dict[str, Any]) -> None:
    assert str(render_entity(entity, fmt="concise")).count("'type'") <= str(
        render_entity(entity)
    ).count("'type'")


@settings(max_examples=50)
@given(entities)
def test_key_values_has_every_attribute(entity: dict[str, Any]) -> None:
    simplified = render_entity(entity, fmt="keyValues")
    assert set(simplified) - {"id", "type", "scope"} == set(entity["attrs"])


# -- normalized -------------------------------------------------------------------------
ENTITY: dict[str, Any] = {
    "id": "urn:ngsi-ld:Car:1",
    "type": ["Car"],
    "createdAt": T0,
    "modifiedAt": T0,
    "attrs": {
        "speed": [
            {
                "type": "Property",
                "value": 80,
                "createdAt": T0,
                "modifiedAt": T0,
                "sub": {"accuracy": {"type": "Property", "value": 1, "createdAt": T0}},
            },
            {"type": "Property", "value": 82, "datasetId": "urn:ds:gps"},
        ],
        "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}],
        "location": [{"type": "GeoProperty", "value": POINT}],
        "name": [{"type": "LanguageProperty", "languageMap": {"en": "car", "fr": "voiture"}}],
        "parts": [{"type": "ListRelationship", "objectList": ["urn:p:1", "urn:p:2"]}],
        "colour": [{"type": "VocabProperty", "vocab": "Red"}],
        "spec": [{"type": "JsonProperty", "json": {"a": [1]}}],
        "seats": [{"type": "ListProperty", "valueList": [2, 3]}],
    },
}


def test_normalized() -> None:
    out = render_entity(ENTITY)
    assert out["type"] == "Car" and "createdAt" not in out
    assert out["speed"] == [
        {"type": "Property", "value": 80, "accuracy": {"type": "Property", "value": 1}},
        {"type": "Property", "value": 82, "datasetId": "urn:ds:gps"},
    ]
    assert out["parts"] == {
        "type": "ListRelationship",
        "objectList": [{"object": "urn:p:1"}, {"object": "urn:p:2"}],
    }
    assert out["owner"] == {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}


def test_sys_attrs_at_every_level() -> None:
    out = render_entity(ENTITY, sys_attrs=True)
    assert out["createdAt"] == out["modifiedAt"] == T0
    assert out["speed"][0]["createdAt"] == T0
    assert out["speed"][0]["accuracy"]["createdAt"] == T0
    assert render_entity(ENTITY, fmt="keyValues", sys_attrs=True)["createdAt"] == T0


def test_concise() -> None:
    out = render_entity(ENTITY, fmt="concise")
    assert out["speed"] == [{"value": 80, "accuracy": 1}, {"value": 82, "datasetId": "urn:ds:gps"}]
    assert out["owner"] == {"object": "urn:ngsi-ld:Person:1"}
    assert out["location"] == POINT
    assert out["parts"] == {"objectList": ["urn:p:1", "urn:p:2"]}
    assert out["colour"] == {"vocab": "Red"}


def test_concise_keeps_type_of_property_holding_a_geometry() -> None:
    entity = {
        "id": "urn:a:1",
        "type": ["T"],
        "attrs": {"p": [{"type": "Property", "value": POINT}]},
    }
    assert render_entity(entity, fmt="concise")["p"] == {"type": "Property", "value": POINT}


def test_key_values() -> None:
    out = render_entity(ENTITY, fmt="keyValues")
    assert out["speed"] == {"dataset": {"@none": 80, "urn:ds:gps": 82}}
    assert out["owner"] == "urn:ngsi-ld:Person:1"
    assert out["location"] == POINT
    assert out["name"] == {"languageMap": {"en": "car", "fr": "voiture"}}
    assert out["colour"] == {"vocab": "Red"}
    assert out["spec"] == {"json": {"a": [1]}}
    assert out["seats"] == [2, 3]  # 4.5.4: ListProperty and ListRelationship are bare arrays
    assert out["parts"] == ["urn:p:1", "urn:p:2"]


def test_lang_picks_one_language() -> None:
    assert render_entity(ENTITY, lang="fr")["name"] == {
        "type": "Property",
        "value": "voiture",
        "lang": "fr",
    }
    assert render_entity(ENTITY, fmt="keyValues", lang="fr")["name"] == "voiture"
    # 4.15: "*" is any language, still rendered as a Property in one language
    assert render_entity(ENTITY, lang="*")["name"] == {
        "type": "Property", "value": "car", "lang": "en"}


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("fr", ("fr", "voiture")),
        ("FR-ca", ("fr", "voiture")),
        ("es,fr;q=0.5,en;q=0.9", ("en", "car")),
        ("es", ("@none", "auto")),
        ("*", ("@none", "auto")),
    ],
)
def test_best_language(lang: str, expected: tuple[str, str]) -> None:
    assert best_language({"en": "car", "fr": "voiture", "@none": "auto"}, lang) == expected


def test_best_language_falls_back_to_first() -> None:
    assert best_language({"de": "Auto", "en": "car"}, "es") == ("de", "Auto")


def test_render_attribute_alone() -> None:
    assert render_attribute(ENTITY["attrs"]["owner"], fmt="keyValues") == "urn:ngsi-ld:Person:1"
    single_dataset = [{"type": "Property", "value": 1, "datasetId": "urn:ds:1"}]
    assert render_attribute(single_dataset, fmt="keyValues") == {"dataset": {"urn:ds:1": 1}}


# -- projections ------------------------------------------------------------------------
def test_select_attrs() -> None:
    out = select_attributes(ENTITY, attrs=["owner", "nope"])
    assert out["id"] == ENTITY["id"] and list(out["attrs"]) == ["owner"]
    assert ENTITY["attrs"]["speed"]  # the input is not modified


def test_pick_and_omit() -> None:
    picked = select_attributes(ENTITY, pick=["id", "owner"])
    assert "type" not in picked and list(picked["attrs"]) == ["owner"]
    omitted = select_attributes(ENTITY, omit=["id", "owner"])
    assert "id" not in omitted and "owner" not in omitted["attrs"] and "speed" in omitted["attrs"]
    assert "id" not in render_entity(omitted)


def test_dataset_id_filter() -> None:
    only_gps = select_attributes(ENTITY, dataset_ids=["urn:ds:gps"])
    assert only_gps["attrs"] == {"speed": [ENTITY["attrs"]["speed"][1]]}
    defaults = select_attributes(ENTITY, dataset_ids=["@none"])
    assert defaults["attrs"]["speed"] == [ENTITY["attrs"]["speed"][0]]
    assert set(defaults["attrs"]) == set(ENTITY["attrs"])


# -- GeoJSON ----------------------------------------------------------------------------
def test_feature() -> None:
    feature = to_feature(ENTITY)
    assert feature["type"] == "Feature" and feature["id"] == ENTITY["id"]
    assert feature["geometry"] == POINT
    assert feature["properties"]["type"] == "Car"
    assert feature["properties"]["location"] == {"type": "GeoProperty", "value": POINT}
    assert "id" not in feature["properties"]
    simple = to_feature(ENTITY, fmt="keyValues")
    assert simple["properties"]["owner"] == "urn:ngsi-ld:Person:1"


def test_feature_without_the_geometry_property() -> None:
    assert to_feature(ENTITY, geometry_property="area")["geometry"] is None
    assert to_feature(ENTITY, geometry_property="owner")["geometry"] is None


def test_feature_prefers_the_default_instance() -> None:
    other = {"type": "Point", "coordinates": [0, 0]}
    entity = {
        "id": "urn:a:1",
        "type": ["T"],
        "attrs": {
            "location": [
                {"type": "GeoProperty", "value": other, "datasetId": "urn:ds:1"},
                {"type": "GeoProperty", "value": POINT},
            ]
        },
    }
    assert to_feature(entity)["geometry"] == POINT


def test_feature_collection() -> None:
    collection = to_feature_collection(to_feature(e) for e in [ENTITY, ENTITY])
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 2
    assert to_feature_collection([]) == {"type": "FeatureCollection", "features": []}
