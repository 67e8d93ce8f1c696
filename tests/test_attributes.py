"""Tests of ngsi_ld.attributes: one attribute, normalized, concise and keyValues."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.attributes import (
    MAX_SUB_ATTRIBUTE_DEPTH,
    MAX_VALUE_DEPTH,
    NULL,
    is_deletion,
    is_iri,
    is_term,
    parse_attribute,
)
from ngsi_ld.errors import BadRequestData

POINT = {"type": "Point", "coordinates": [1.0, 2.0]}


def one(value: Any, **kw: Any) -> dict[str, Any]:
    [instance] = parse_attribute("attr", value, **kw)
    return instance


# -- normalized ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        {
            "type": "Property",
            "value": 21.5,
            "unitCode": "CEL",
            "observedAt": "2020-01-01T00:00:00Z",
        },
        {"type": "Property", "value": {"@type": "DateTime", "@value": "2020-01-01T00:00:00Z"}},
        {"type": "Property", "value": [1, "a", {"k": None}]},
        {"type": "Property", "value": False},
        {"type": "Relationship", "object": "urn:ngsi-ld:Car:1", "objectType": "Car"},
        {"type": "Relationship", "object": ["urn:a:1", "urn:a:2"], "objectType": ["A", "B"]},
        {"type": "GeoProperty", "value": POINT},
        {"type": "LanguageProperty", "languageMap": {"en": "yes", "fr": ["oui", "ouais"]}},
        {"type": "VocabProperty", "vocab": ["Male", "https://example.org/Female"]},
        {"type": "JsonProperty", "json": {"type": "Relationship", "anything": [None]}},
        {"type": "ListProperty", "valueList": [1, 2, 3]},
        {"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:Dataset:a"},
    ],
)
def test_normalized_instances_are_kept(raw: dict[str, Any]) -> None:
    assert one(raw) == raw


def test_list_relationship_objects_become_uris() -> None:
    raw = {"type": "ListRelationship", "objectList": [{"object": "urn:a:1"}, "urn:a:2"]}
    assert one(raw) == {"type": "ListRelationship", "objectList": ["urn:a:1", "urn:a:2"]}


def test_sub_attributes_at_any_depth() -> None:
    raw = {
        "type": "Property",
        "value": 3,
        "accuracy": {"type": "Property", "value": 0.1, "source": {"object": "urn:x:1"}},
        "note": "concise",
    }
    assert one(raw) == {
        "type": "Property",
        "value": 3,
        "sub": {
            "accuracy": {
                "type": "Property",
                "value": 0.1,
                "sub": {"source": {"type": "Relationship", "object": "urn:x:1"}},
            },
            "note": {"type": "Property", "value": "concise"},
        },
    }


def test_system_members_sent_by_users_are_ignored() -> None:
    raw = {"type": "Property", "value": 1, "createdAt": "x", "modifiedAt": "y", "instanceId": "z"}
    assert one(raw) == {"type": "Property", "value": 1}


# -- concise ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (5, {"type": "Property", "value": 5}),
        ("text", {"type": "Property", "value": "text"}),
        ([1, 2], {"type": "Property", "value": [1, 2]}),
        ([], {"type": "Property", "value": []}),
        ({"value": 5, "unitCode": "C"}, {"type": "Property", "value": 5, "unitCode": "C"}),
        ({"object": "urn:a:1"}, {"type": "Relationship", "object": "urn:a:1"}),
        ({"languageMap": {"en": "a"}}, {"type": "LanguageProperty", "languageMap": {"en": "a"}}),
        ({"vocab": "Male"}, {"type": "VocabProperty", "vocab": "Male"}),
        ({"json": [1]}, {"type": "JsonProperty", "json": [1]}),
        ({"valueList": [1]}, {"type": "ListProperty", "valueList": [1]}),
        ({"objectList": ["urn:a:1"]}, {"type": "ListRelationship", "objectList": ["urn:a:1"]}),
        (POINT, {"type": "GeoProperty", "value": POINT}),
        ({"value": POINT}, {"type": "GeoProperty", "value": POINT}),
        ({"street": "Main", "n": 1}, {"type": "Property", "value": {"street": "Main", "n": 1}}),
    ],
)
def test_concise_input(raw: Any, expected: dict[str, Any]) -> None:
    assert one(raw) == expected


def test_multi_attribute_array() -> None:
    raw = [{"value": 1}, {"type": "Property", "value": 2, "datasetId": "urn:ds:2"}]
    assert parse_attribute("speed", raw) == [
        {"type": "Property", "value": 1},
        {"type": "Property", "value": 2, "datasetId": "urn:ds:2"},
    ]


# -- keyValues ------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1, "a", [POINT], {"value": 1}, {"type": "Relationship"}])
def test_key_values_are_properties(value: Any) -> None:
    assert one(value, key_values=True) == {"type": "Property", "value": value}


def test_key_values_geometry_is_geoproperty_and_validated() -> None:
    assert one(POINT, key_values=True) == {"type": "GeoProperty", "value": POINT}
    with pytest.raises(BadRequestData, match="latitude"):
        one({"type": "Point", "coordinates": [0, 100]}, key_values=True)


# -- merge-patch deletions --------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        NULL,
        {"type": "Property", "value": NULL},
        {"object": NULL},
        {"type": "LanguageProperty", "languageMap": {"@none": NULL}},
    ],
)
def test_the_ngsi_ld_null_asks_for_deletion(raw: Any) -> None:
    assert is_deletion(one(raw, allow_null=True))


@pytest.mark.parametrize("allow_null", [False, True])
def test_json_null_is_never_valid(allow_null: bool) -> None:
    with pytest.raises(BadRequestData, match="null"):
        one(None, allow_null=allow_null)
    with pytest.raises(BadRequestData):
        one({"type": "Property", "value": None}, allow_null=allow_null)


def test_without_allow_null_the_null_uri_is_kept_for_the_operation_to_refuse() -> None:
    assert one(NULL) == {"type": "Property", "value": NULL}


def test_deletion_keeps_dataset_and_marks_sub_attributes() -> None:
    inst = one({"value": 3, "datasetId": "urn:ds:1", "accuracy": NULL}, allow_null=True)
    assert not is_deletion(inst)
    assert is_deletion(inst["sub"]["accuracy"])
    gone = one({"value": NULL, "datasetId": "urn:ds:1"}, allow_null=True)
    assert gone == {"type": "Property", "value": NULL, "datasetId": "urn:ds:1"}


# -- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "raw", "needle"),
    [
        ("attr", {"type": "Property"}, "'value'"),
        ("attr", {"type": "Relationship", "value": ["urn:a:1"]}, "'object'"),
        ("attr", {"type": "Property", "value": 1, "object": "urn:a:1"}, "'object'"),
        ("attr", {"type": "Property", "value": 1, "objectType": "T"}, "objectType"),
        ("attr", {"type": "Propety", "value": 1}, "'Propety'"),
        ("attr", {"type": ["Property"], "value": 1}, "['Property']"),
        ("attr", {"type": "Relationship", "object": "not a uri"}, "object"),
        ("attr", {"type": "Relationship", "object": []}, "object"),
        ("attr", {"type": "Relationship", "object": [""]}, "object"),
        (
            "attr",
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [0]}},
            "position",
        ),
        ("attr", {"type": "GeoProperty", "value": "here"}, "geometry"),
        ("attr", {"type": "LanguageProperty", "languageMap": "en"}, "languageMap"),
        ("attr", {"type": "LanguageProperty", "languageMap": {"en": 1}}, "languageMap['en']"),
        ("attr", {"type": "LanguageProperty", "languageMap": {"e n": "x"}}, "'e n'"),
        ("attr", {"type": "VocabProperty", "vocab": 3}, "vocab"),
        ("attr", {"type": "ListProperty", "valueList": 3}, "valueList"),
        ("attr", {"type": "ListRelationship", "objectList": [{"object": 1}]}, "objectList"),
        ("attr", {"type": "Property", "value": None}, "null"),
        ("attr", {"type": "Property", "value": 1, "observedAt": "noon"}, "observedAt"),
        ("attr", {"type": "Property", "value": 1, "unitCode": 3}, "unitCode"),
        ("attr", {"type": "Property", "value": 1, "datasetId": "ds 1"}, "datasetId"),
        ("attr", {"value": 1, "object": "urn:a:1"}, "ambiguous"),
        ("attr", {"datasetId": "urn:ds:1"}, "no value"),
        ("attr", {"value": {"@type": "DateTime", "@value": "noon"}}, "DateTime"),
        ("attr", [{"value": 1}, {"value": 2}], "default instance"),
        (
            "attr",
            [{"value": 1, "datasetId": "urn:d:1"}, {"value": 2, "datasetId": "urn:d:1"}],
            "urn:d:1",
        ),
        ("attr", [{"value": 1}, 5], "Attribute 'attr'"),
        ("attr", {"value": 1, "sub": {"value": 1, "datasetId": "urn:d:1"}}, "datasetId"),
        ("attr", {"value": 1, "sub": [{"value": 1}, {"value": 2}]}, "several instances"),
        ("attr", {"value": 1, "bad name": 2}, "'bad name'"),
        ("attr", {"value": 1, "deep": {"value": 1, "deeper": {"type": "Relationship"}}}, "deeper"),
        ("id", 1, "reserved"),
        ("observedAt", 1, "reserved"),
        ("9lives", 1, "9lives"),
        ("a b", 1, "'a b'"),
        ("", 1, "''"),
    ],
)
def test_invalid_attributes(name: str, raw: Any, needle: str) -> None:
    with pytest.raises(BadRequestData) as err:
        parse_attribute(name, raw)
    assert needle in err.value.detail


def test_error_names_the_attribute() -> None:
    with pytest.raises(BadRequestData, match="'temperature'"):
        parse_attribute("temperature", {"type": "Property"})


@pytest.mark.parametrize(
    "name", ["temperature", "_x", "a.b-c_d", "ñandú", "ngsi-ld:x", "http://e.org/a#b"]
)
def test_valid_names(name: str) -> None:
    assert is_term(name) or is_iri(name)
    assert parse_attribute(name, 1) == [{"type": "Property", "value": 1}]


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=10,
    )
)
def test_any_json_is_either_accepted_or_bad_request(value: Any) -> None:
    for kw in ({}, {"key_values": True}, {"allow_null": True}):
        try:
            instances = parse_attribute("attr", value, **kw)
        except BadRequestData as err:
            assert err.detail
        else:
            assert instances and all(i["type"] for i in instances)


@given(
    st.recursive(
        st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=10,
    )
)
def test_json_property_keeps_any_json_object_or_array(value: Any) -> None:
    # 4.5.24.2: "json" is a raw JSON object (or an array), never a bare scalar
    if isinstance(value, dict | list):
        assert one({"type": "JsonProperty", "json": value})["json"] == value
    else:
        with pytest.raises(BadRequestData):
            one({"type": "JsonProperty", "json": value})


@pytest.mark.parametrize("reserved", ["type", "scope", "lang", "value", "vocab", "expiresAt"])
def test_a_reserved_name_is_refused_however_often_valid_names_came_before(reserved: str) -> None:
    for _ in range(3):
        assert parse_attribute("temperature", {"type": "Property", "value": 1})
        with pytest.raises(BadRequestData, match="reserved"):
            parse_attribute(reserved, {"type": "Property", "value": 1})
    if reserved in ("scope", "lang"):  # not members of an instance: sub-attribute names
        with pytest.raises(BadRequestData, match="reserved"):
            parse_attribute("temperature", {"type": "Property", "value": 1, reserved: 2})


@pytest.mark.parametrize("name", [None, 3, ["temperature"], {"temperature": 1}])
def test_a_name_that_is_not_a_string_is_bad_request_data(name: Any) -> None:
    from ngsi_ld.attributes import check_name

    check_name("temperature")  # a valid name is remembered; others still checked
    with pytest.raises(BadRequestData, match="must be a term or an IRI"):
        check_name(name)


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for n in range(depth):
        value = {"k": value} if n % 2 else [value]
    return value


@pytest.mark.parametrize("wrap", [
    lambda v: {"type": "Property", "value": v},
    lambda v: {"type": "JsonProperty", "json": v},
    lambda v: {"type": "ListProperty", "valueList": [v]},
    lambda v: v,  # concise
    lambda v: {"value": v},
])
def test_values_nest_up_to_the_limit(wrap: Any) -> None:
    inside = MAX_VALUE_DEPTH - 1 if wrap(0) == {"type": "ListProperty", "valueList": [0]} else (
        MAX_VALUE_DEPTH)
    assert parse_attribute("a", wrap(_nested(inside)))
    for depth in (inside + 1, 5000):  # far past Python's recursion limit too
        with pytest.raises(BadRequestData, match="nests deeper"):
            parse_attribute("a", wrap(_nested(depth)))
    assert parse_attribute("a", _nested(MAX_VALUE_DEPTH), key_values=True)
    with pytest.raises(BadRequestData, match="nests deeper"):
        parse_attribute("a", _nested(MAX_VALUE_DEPTH + 1), key_values=True)


def test_sub_attributes_nest_up_to_the_limit() -> None:
    def chain(levels: int) -> dict[str, Any]:
        instance: dict[str, Any] = {"type": "Property", "value": 1}
        for _ in range(levels):
            instance = {"type": "Property", "value": 1, "s": instance}
        return instance

    assert parse_attribute("a", chain(MAX_SUB_ATTRIBUTE_DEPTH))
    for levels in (MAX_SUB_ATTRIBUTE_DEPTH + 1, 3000):
        with pytest.raises(BadRequestData, match="sub-attributes nest deeper"):
            parse_attribute("a", chain(levels))


def test_both_limits_hold_together_in_concise_input() -> None:
    instance: Any = {"value": _nested(MAX_VALUE_DEPTH)}
    for _ in range(MAX_SUB_ATTRIBUTE_DEPTH):
        instance = {"value": 1, "s": instance}
    parsed = parse_attribute("a", instance)[0]
    for _ in range(MAX_SUB_ATTRIBUTE_DEPTH):
        parsed = parsed["sub"]["s"]
    assert parsed["value"] == _nested(MAX_VALUE_DEPTH)


def test_a_deep_geometry_is_bad_request_data_with_a_short_detail() -> None:
    coordinates = _nested(5000, 1.0)
    for raw in ({"type": "Polygon", "coordinates": coordinates},
                {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": coordinates}}):
        with pytest.raises(BadRequestData) as caught:
            parse_attribute("location", raw)
        assert len(caught.value.detail) < 300
    wide = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": ["x"] * 100_000}}
    with pytest.raises(BadRequestData) as caught:
        parse_attribute("location", wide)
    assert len(caught.value.detail) < 300
