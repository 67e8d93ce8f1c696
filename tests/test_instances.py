"""Instance helpers (ngsi_ld.instances): NGSI-LD Null, timestamps, merging."""

from __future__ import annotations

import copy
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld import instances
from ngsi_ld.errors import BadRequestData
from ngsi_ld.instances import (
    DELETE,
    attrs_of,
    is_delete,
    merge_instance,
    reject_nulls,
    restamp,
    restamp_owned,
    stamp_new,
    strip_stamps,
)

ACC = "https://example.org/accuracy"
T0, T1 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"


@pytest.mark.parametrize(
    "instance",
    [
        DELETE,
        {"type": "Property", "value": DELETE},
        {"type": "Relationship", "object": DELETE},
        {"type": "LanguageProperty", "languageMap": {"@none": DELETE}},
        {"type": "ListProperty", "valueList": [DELETE]},
        {"value": DELETE},
    ],
)
def test_ngsi_ld_null_forms(instance: Any) -> None:
    assert is_delete(instance)


@pytest.mark.parametrize(
    "instance",
    [
        {"type": "Property", "value": "urn:ngsi-ld:other"},
        {"type": "Property", "value": 0, "unitCode": DELETE},
        {"type": "LanguageProperty", "languageMap": {"en": DELETE}},
        "text",
    ],
)
def test_not_ngsi_ld_null(instance: Any) -> None:
    assert not is_delete(instance)


def test_restamp_keeps_created_at_and_unchanged_sub_stamps() -> None:
    old = stamp_new(
        {"type": "Property", "value": 1, "sub": {ACC: {"type": "Property", "value": 2}}}, T0
    )
    new = restamp(
        {"type": "Property", "value": 3, "sub": {ACC: {"type": "Property", "value": 2}}}, old, T1
    )
    assert (new["createdAt"], new["modifiedAt"]) == (T0, T1)
    assert (new["sub"][ACC]["createdAt"], new["sub"][ACC]["modifiedAt"]) == (T0, T0)


def test_merge_instance_replaces_or_merges_sub_attributes() -> None:
    old = stamp_new(
        {
            "type": "Property",
            "value": 1,
            "sub": {ACC: {"type": "Property", "value": 2, "unitCode": "M"}},
        },
        T0,
    )
    fragment = {"sub": {ACC: {"value": 5}}}
    deep = merge_instance(old, fragment, T1, deep=True)
    assert deep["sub"][ACC]["unitCode"] == "M" and deep["sub"][ACC]["value"] == 5
    shallow = merge_instance(old, fragment, T1, deep=False)
    assert "unitCode" not in shallow["sub"][ACC]


def test_shape_errors_are_bad_request_data() -> None:
    with pytest.raises(BadRequestData, match="attributes"):
        attrs_of({"attrs": ["x"]})
    with pytest.raises(BadRequestData, match=ACC):
        attrs_of({"attrs": {ACC: {"type": "Property"}}})
    with pytest.raises(BadRequestData, match="scope"):
        reject_nulls({"scope": [DELETE]}, "create")
    with pytest.raises(BadRequestData, match=ACC):
        merge_instance({"type": "Property", "value": 1}, {"sub": {ACC: 3}}, T1, deep=True)


@given(st.integers(), st.integers())
def test_strip_stamps_ignores_only_the_stamps(a: int, b: int) -> None:
    x = stamp_new({"type": "Property", "value": a}, T0)
    y = stamp_new({"type": "Property", "value": b}, T1)
    assert (strip_stamps(x) == strip_stamps(y)) == (a == b)


_instances = st.fixed_dictionaries(
    {"type": st.just("Property"), "value": st.integers() | st.text(max_size=5)},
    optional={
        "unitCode": st.sampled_from(["M", "CEL"]),
        "createdAt": st.just(T0),
        "sub": st.dictionaries(
            st.sampled_from([ACC, "https://example.org/q"]),
            st.fixed_dictionaries({"type": st.just("Property"), "value": st.integers(0, 3)}),
            max_size=2,
        ),
    },
)


@given(_instances, st.none() | _instances.map(lambda i: stamp_new(i, T0)))
def test_restamp_owned_is_restamp_on_an_owned_copy(new: Any, old: Any) -> None:
    import copy

    expected = restamp(new, old, T1)
    assert restamp_owned(copy.deepcopy(new), old, T1) == expected
    assert list(restamp_owned(copy.deepcopy(new), old, T1)) == list(expected)  # same key order


def test_restamp_leaves_its_input_alone() -> None:
    new = {"type": "Property", "value": [1, 2]}
    out = restamp(new, None, T1)
    out["value"].append(3)
    assert new == {"type": "Property", "value": [1, 2]}


def test_reject_nulls_finds_the_null_at_any_depth_and_only_as_a_main_member() -> None:
    deep = {"attrs": {ACC: [{"type": "Property", "value": 1, "sub": {ACC: DELETE}}]}}
    with pytest.raises(BadRequestData, match=ACC):
        reject_nulls(deep, "create")
    as_other_member = {"attrs": {ACC: [{"type": "Property", "value": 1, "unitCode": DELETE}]}}
    reject_nulls(as_other_member, "create")  # the Null as a plain value is no deletion
    reject_nulls({"attrs": {ACC: [{"type": "Property", "value": 2**70}]}}, "create")
    with pytest.raises(BadRequestData, match=ACC):
        reject_nulls({"attrs": {ACC: [{"type": "Property", "value": DELETE, "n": 2**70}]}}, "x")


# A merge of scalar members (the usual Partial Attribute Update) is made without the copies
# of the general way: the same instance as the general way gives, for instances and
# fragments of every shape around it (sub-attributes, Nulls, objects, kind changes, stamps).
_scalars = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=3),
                     st.booleans(), st.floats(allow_nan=False), st.none(), st.just(DELETE))
_member_values = st.one_of(_scalars, _scalars, st.builds(lambda: {"a": 1, "b": DELETE}),
                           st.builds(lambda: [1]),
                           st.builds(lambda: {ACC: {"type": "Property", "value": 1}}))
_members = st.dictionaries(
    st.sampled_from(["value", "object", "unitCode", "observedAt", "datasetId", "createdAt",
                     "modifiedAt", "sub"]), _member_values, max_size=4)
_kinds = st.sampled_from([None, "Property", "Relationship", "LanguageProperty"])
_merged_instances = st.builds(
    lambda kind, members: {**({"type": kind} if kind else {}), **members}, _kinds, _members)
#: most of them the usual shape: scalar members, maybe a datasetId, stamped or not
_usual_members = st.dictionaries(
    st.sampled_from(["value", "object", "unitCode", "observedAt", "datasetId", "sub"]), _scalars,
    max_size=3)
_usual_instances = st.builds(
    lambda kind, members, stamped: {**({"type": kind} if kind else {}), **members,
                                    **({"createdAt": T0, "modifiedAt": T0} if stamped else {})},
    _kinds, _usual_members, st.booleans())


@given(st.one_of(_usual_instances, _merged_instances),
       st.one_of(_usual_instances, _merged_instances), st.booleans())
def test_a_merge_of_scalar_members_equals_the_general_one(
    old: dict[str, Any], fragment: dict[str, Any], deep: bool,
) -> None:
    before, given_fragment = copy.deepcopy(old), copy.deepcopy(fragment)

    def outcome() -> Any:
        try:
            return merge_instance(old, fragment, T1, deep=deep)
        except Exception as exc:  # a malformed instance: the same refusal either way
            return type(exc)

    merged = outcome()
    # every merge the general way
    with patch.object(instances, "scalar_members", lambda instance: False):
        assert outcome() == merged
    assert old == before and fragment == given_fragment
    if isinstance(merged, dict):  # the merge's own: editing it leaves its inputs as they were
        for member, value in merged.items():
            if member not in ("createdAt", "modifiedAt") and isinstance(value, dict | list):
                value.clear()
        merged["value"] = "edited"
        assert old == before and fragment == given_fragment
