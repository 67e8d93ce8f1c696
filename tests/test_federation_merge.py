"""Merging the broker's and the sources' entities into one answer (4.5.5, 4.3.6.2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation import (
    LOCAL,
    Answer,
    Fragment,
    fill_gaps,
    merge_answers,
    merge_entity,
    paginate,
)

EX = "https://example.org/"
SPEED, BRAND, PARKED, PARKED2 = EX + "speed", EX + "brandName", EX + "isParked", EX + "isParked2"
CAR = "urn:ngsi-ld:Vehicle:1"


def prop(value: Any, **members: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **members}


def rel(target: str, **members: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": target, **members}


def car(**attrs: Any) -> dict[str, Any]:
    return {"id": CAR, "type": [EX + "Vehicle"],
            "attrs": {name: v if isinstance(v, list) else [v] for name, v in attrs.items()}}


def test_the_parts_of_a_split_entity_are_joined() -> None:
    # D011_01_05_inc: the local part and the source's part of the same vehicle
    local = car(speed=prop(56, datasetId="urn:ngsi-ld:Property:speed2"),
                isParked2=rel("urn:ngsi-ld:OffStreetParking:Downtown2"))
    remote = car(brandName=prop("Mercedes"), isParked=rel("urn:ngsi-ld:OffStreetParking:1"))
    local["attrs"] = {EX + k: v for k, v in local["attrs"].items()}
    remote["attrs"] = {EX + k: v for k, v in remote["attrs"].items()}
    merged = merge_entity([Fragment(local), Fragment(remote, "urn:r:source")])
    assert merged["attrs"].keys() == {SPEED, PARKED2, BRAND, PARKED}
    assert merged["attrs"][SPEED] == [prop(56, datasetId="urn:ngsi-ld:Property:speed2")]


def test_the_broker_wins_over_an_auxiliary_source() -> None:
    # D010_01_aux / D011_01_aux: brandName stays the local BMW, the gaps are filled
    local = {"id": CAR, "type": [EX + "Vehicle"], "attrs": {
        BRAND: [prop("BMW")], PARKED2: [rel("urn:ngsi-ld:OffStreetParking:Downtown2")]}}
    auxiliary = {"id": CAR, "type": [EX + "Vehicle"], "attrs": {
        BRAND: [prop("Mercedes", observedAt="2030-01-01T00:00:00Z")],
        PARKED: [rel("urn:ngsi-ld:OffStreetParking:Downtown1")]}}
    merged = merge_entity([Fragment(auxiliary, "urn:r:aux", auxiliary=True), Fragment(local)])
    assert merged["attrs"][BRAND] == [prop("BMW")]
    assert merged["attrs"][PARKED] == auxiliary["attrs"][PARKED]
    assert merged["attrs"][PARKED2] == local["attrs"][PARKED2]


@pytest.mark.parametrize("mine, theirs, winner", [
    ({"observedAt": "2020-01-02T00:00:00Z"}, {"observedAt": "2020-01-01T00:00:00Z"}, "mine"),
    ({"observedAt": "2020-01-01T00:00:00Z"}, {"observedAt": "2020-01-02T00:00:00Z"}, "theirs"),
    # offsets are instants: 01:00+02:00 is before 00:00Z
    ({"observedAt": "2020-01-01T01:00:00+02:00"}, {"observedAt": "2020-01-01T00:00:00Z"},
     "theirs"),
    # observedAt beats no observedAt, however recent the modification
    ({}, {"observedAt": "2000-01-01T00:00:00Z"}, "theirs"),
    ({"modifiedAt": "2030-01-01T00:00:00Z"}, {"observedAt": "2000-01-01T00:00:00Z"}, "theirs"),
    # then the most recent modifiedAt
    ({"modifiedAt": "2020-01-01T00:00:00Z"}, {"modifiedAt": "2021-01-01T00:00:00Z"}, "theirs"),
    ({"modifiedAt": "2021-01-01T00:00:00Z"}, {}, "mine"),
    # a full tie: the broker's own
    ({}, {}, "mine"),
    ({"observedAt": "2020-01-01T00:00:00Z"}, {"observedAt": "2020-01-01T00:00:00.000Z"}, "mine"),
    # a timestamp a source got wrong wins nothing
    ({"modifiedAt": "2020-01-01T00:00:00Z"}, {"modifiedAt": "yesterday"}, "mine"),
])
def test_the_most_recent_instance_wins(mine: dict[str, Any], theirs: dict[str, Any],
                                       winner: str) -> None:
    local = car(**{"speed": prop("mine", **mine)})
    remote = car(**{"speed": prop("theirs", **theirs)})
    merged = merge_entity([Fragment(remote, "urn:r:s"), Fragment(local)])
    assert merged["attrs"]["speed"][0]["value"] == winner


def test_between_two_sources_the_source_id_breaks_a_tie() -> None:
    first = merge_entity([Fragment(car(speed=prop("b")), "urn:r:b"),
                          Fragment(car(speed=prop("a")), "urn:r:a")])
    assert first["attrs"]["speed"] == [prop("a")]


def test_every_dataset_id_is_kept() -> None:
    local = car(speed=[prop(1), prop(2, datasetId="urn:d:gps")])
    remote = car(speed=[prop(3, datasetId="urn:d:radar"),
                        prop(4, datasetId="urn:d:gps", observedAt="2030-01-01T00:00:00Z")])
    merged = merge_entity([Fragment(local), Fragment(remote, "urn:r:s")])
    assert merged["attrs"]["speed"] == [
        prop(1), prop(4, datasetId="urn:d:gps", observedAt="2030-01-01T00:00:00Z"),
        prop(3, datasetId="urn:d:radar")]


def test_entity_members_are_combined() -> None:
    local = {"id": CAR, "type": ["A"], "scope": ["/x"], "createdAt": "2020-01-02T00:00:00.000Z",
             "modifiedAt": "2020-01-03T00:00:00.000Z", "attrs": {}}
    remote = {"id": CAR, "type": ["B", "A"], "scope": ["/y"],
              "createdAt": "2020-01-01T00:00:00.000Z", "modifiedAt": "2020-01-04T00:00:00.000Z",
              "attrs": {}}
    merged = merge_entity([Fragment(remote, "urn:r:s"), Fragment(local)])
    assert merged == {"id": CAR, "type": ["A", "B"], "scope": ["/x", "/y"],
                      "createdAt": "2020-01-01T00:00:00.000Z",
                      "modifiedAt": "2020-01-04T00:00:00.000Z", "attrs": {}}


def test_expired_instances_are_dropped() -> None:
    local = car(speed=prop(1, expiresAt="2020-01-01T00:00:00Z"))
    remote = car(speed=prop(2))
    now = datetime(2021, 1, 1, tzinfo=UTC)
    assert merge_entity([Fragment(local), Fragment(remote, "urn:r:s")],
                        now=now)["attrs"]["speed"] == [prop(2)]
    assert merge_entity([Fragment(local)], now=now)["attrs"] == {}
    with pytest.raises(ValueError, match="at least one"):
        merge_entity([])


def test_answers_are_merged_by_id_and_ordered_by_id() -> None:
    def one(entity_id: str, value: int) -> dict[str, Any]:
        return {"id": entity_id, "type": ["T"], "attrs": {"p": [prop(value)]}}

    merged = merge_answers([
        Answer([one("urn:b", 1), one("urn:c", 1)]),
        Answer([one("urn:a", 2), one("urn:b", 2)], "urn:r:s"),
        Answer([one("urn:d", 3)], "urn:r:aux", auxiliary=True),
    ])
    assert [e["id"] for e in merged] == ["urn:a", "urn:b", "urn:c", "urn:d"]
    assert merged[1]["attrs"]["p"] == [prop(1)]  # local wins the tie
    page = paginate(merged, 1, 2)
    assert ([e["id"] for e in page.entities], page.count, page.more) == (["urn:b", "urn:c"], 4,
                                                                          True)
    assert paginate(merged, 2, 2).more is False
    assert paginate(merged, 10, 2).entities == []
    with pytest.raises(BadRequestData):
        paginate(merged, -1, 2)


# -- properties -----------------------------------------------------------------------------

stamps = st.one_of(st.none(), st.sampled_from([
    "2020-01-01T00:00:00Z", "2020-01-01T00:00:00.000Z", "2021-06-01T12:00:00Z",
    "2021-06-01T14:00:00+02:00", "2022-01-01T00:00:00Z", "garbage"]))


@st.composite
def instances(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": draw(st.integers(0, 3))}
    for member in ("observedAt", "modifiedAt"):
        stamp = draw(stamps)
        if stamp is not None:
            out[member] = stamp
    dataset = draw(st.sampled_from([None, "urn:d:1", "urn:d:2"]))
    if dataset is not None:
        out["datasetId"] = dataset
    return out


@st.composite
def fragments(draw: st.DrawFn) -> list[Fragment]:
    sources = draw(st.lists(st.sampled_from([LOCAL, "urn:r:a", "urn:r:b", "urn:r:c"]),
                            min_size=1, max_size=4, unique=True))
    out = []
    for source in sources:
        attrs: dict[str, list[dict[str, Any]]] = {}
        for name in draw(st.lists(st.sampled_from(["p", "q", "r"]), max_size=3, unique=True)):
            found = draw(st.lists(instances(), min_size=1, max_size=3,
                                  unique_by=lambda i: i.get("datasetId")))
            attrs[name] = found
        entity = {"id": CAR, "type": draw(st.lists(st.sampled_from(["A", "B"]), min_size=1,
                                                   unique=True)), "attrs": attrs}
        out.append(Fragment(entity, source, auxiliary=source != LOCAL and draw(st.booleans())))
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(parts=fragments(), order=st.randoms(use_true_random=False))
def test_the_merge_does_not_depend_on_the_order_the_parties_answered_in(
        parts: list[Fragment], order: Any) -> None:
    shuffled = list(parts)
    order.shuffle(shuffled)
    assert merge_entity(shuffled) == merge_entity(parts)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(parts=fragments())
def test_an_auxiliary_source_only_fills_gaps(parts: list[Fragment]) -> None:
    merged = merge_entity(parts)
    regular = {(name, i.get("datasetId")): i for f in parts if not f.auxiliary
               for name, found in f.entity["attrs"].items() for i in found}
    every = {(name, i.get("datasetId")) for f in parts
             for name, found in f.entity["attrs"].items() for i in found}
    kept = {(name, i.get("datasetId")): i for name, found in merged["attrs"].items()
            for i in found}
    assert kept.keys() == every  # nothing is lost: one instance a datasetId
    for key, instance in kept.items():
        if key in regular:
            assert any(instance in f.entity["attrs"].get(key[0], []) for f in parts
                       if not f.auxiliary)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(parts=fragments())
def test_merging_a_merge_again_changes_nothing(parts: list[Fragment]) -> None:
    merged = merge_entity(parts)
    assert merge_entity([Fragment(merged)]) == merged


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(), st.booleans()), max_size=30))
def test_fill_gaps_keeps_regular_items_and_auxiliary_ones_only_in_gaps(
        candidates: list[tuple[str, int, bool]]) -> None:
    # the rule shared by the latest-state merge and the temporal one (4.3.6.2)
    chosen = fill_gaps(candidates)
    assert set(chosen) == {key for key, _, _ in candidates}
    for key, items in chosen.items():
        regular = [item for k, item, aux in candidates if k == key and not aux]
        auxiliary = [item for k, item, aux in candidates if k == key and aux]
        assert items == (regular or auxiliary)
