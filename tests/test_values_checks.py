"""The checks of a main member (ngsi_ld.values.main_value) from one JSON encoding of the
value give what the checks one by one give: the depth walked (check_depth), the typed
literal, the NGSI-LD Null inside a Property value walked for (5.5.4), in that order.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData, NgsiLdError
from ngsi_ld.instances import DELETE as NULL
from ngsi_ld.values import MAX_VALUE_DEPTH, check_depth, main_value

_KINDS = ["Property", "GeoProperty", "Relationship", "LanguageProperty", "VocabProperty",
          "JsonProperty", "ListProperty", "ListRelationship"]
_LEAVES = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.booleans(),
                    st.none(), st.sampled_from([NULL, "x", "[{[{", "urn:ngsi-ld:T:1", "@none",
                                                "2024-01-01T00:00:00Z", "yesterday"]))
_KEYS = st.sampled_from(["a", "b", "@type", "@value", "@none", "type", "coordinates"])
_JSON = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_KEYS, inner, max_size=3), max_leaves=10)
_LITERALS = st.fixed_dictionaries({
    "@type": st.sampled_from(["DateTime", "Date", "Time", "https://uri.etsi.org/ngsi-ld/Date",
                              "x", 5]),
    "@value": st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01", "12:00:00", "bad", NULL])})


def _nested(depth: int, leaf: Any, as_dict: bool) -> Any:
    value = leaf
    for level in range(depth):
        value = {"a": value} if as_dict and level % 2 else [value]
    return value


_DEEP = st.builds(_nested, st.integers(MAX_VALUE_DEPTH - 2, MAX_VALUE_DEPTH + 3),
                  st.one_of(_LEAVES, _LITERALS), st.booleans())
_VALUES = st.one_of(_JSON, _LITERALS, _DEEP,
                    st.builds(lambda v: {"a": v, "b": NULL}, _JSON),
                    st.builds(lambda v: ["[" * 20, v, "{" * 20], _JSON))


def _nested_null(value: Any) -> bool:
    """The NGSI-LD Null as a member of an object anywhere inside ``value``, walked."""
    if value.__class__ is dict:
        return any(child == NULL or _nested_null(child) for child in value.values())
    if value.__class__ is list:
        return any(_nested_null(child) for child in value)
    return False


def _one_by_one(kind: str, value: Any, null_in_objects: bool) -> Any:
    """What main_value gave with each check walking the value on its own."""
    where = "Attribute 'a'"
    if kind != "Property" or value is None or value.__class__ not in (dict, list):
        return _outcome(kind, value, null_in_objects)
    try:
        check_depth(where, value)
        if value.__class__ is dict:
            # the typed literal's check alone: main_value of the literal without nesting
            literal = {k: value[k] for k in ("@type", "@value") if k in value}
            if "@value" in literal:
                main_value(where, "Property", literal, null_in_objects=True)
        if not null_in_objects and _nested_null(value):
            raise BadRequestData(
                f"{where}: urn:ngsi-ld:null cannot be a member of a Property value here")
    except NgsiLdError as exc:
        return exc.to_problem()
    return value


def _outcome(kind: str, value: Any, null_in_objects: bool) -> Any:
    try:
        return main_value("Attribute 'a'", kind, value, null_in_objects=null_in_objects)
    except NgsiLdError as exc:
        return exc.to_problem()


@given(st.sampled_from(_KINDS), _VALUES, st.booleans())
def test_main_value_from_one_encoding_gives_what_each_check_gives(
        kind: str, value: Any, null_in_objects: bool) -> None:
    assert _outcome(kind, value, null_in_objects) == _one_by_one(kind, value, null_in_objects)


@given(_DEEP, st.sampled_from(_KINDS))
def test_a_value_deeper_than_the_limit_is_refused_as_such(value: Any, kind: str) -> None:
    try:
        check_depth("w", value)
    except BadRequestData:
        refused = _outcome(kind, value, False)
        assert isinstance(refused, dict) and "nests deeper" in refused["detail"]
