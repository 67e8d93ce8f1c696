"""The temporal representation as input (ngsi_ld.temporal.body) and the edits of a
stored evolution (ngsi_ld.temporal.edits): what POST, PATCH and DELETE on
/temporal/entities accept and what they leave stored."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ngsi_ld.errors import BadRequestData, NgsiLdError
from ngsi_ld.temporal import (
    SCOPE,
    Instance,
    attribute_selector,
    check_instance_id,
    latest_state,
    parse_duration,
    parse_instance_fragment,
    parse_temporal_attributes,
    parse_temporal_entity,
    patch_instance,
    retention_cutoff,
    temporal_history,
    to_micros,
    upsert,
)

EID = "urn:ngsi-ld:Vehicle:1"
NOW = "2026-05-01T00:00:00.000Z"
LATER = "2026-05-02T00:00:00.000Z"


def ids(prefix: str = "i") -> Any:
    counter = itertools.count(1)
    return lambda: f"urn:ngsi-ld:Instance:{prefix}{next(counter)}"


def obs(value: Any, at: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at, **extra}


def vehicle(**attrs: Any) -> dict[str, Any]:
    return {"id": EID, "type": "Vehicle", **attrs}


def stored(body: dict[str, Any], now: str = NOW, prefix: str = "i") -> list[Instance]:
    return list(temporal_history(parse_temporal_entity(body), now, ids(prefix)).instances)


def test_an_array_holds_points_in_time_not_datasets() -> None:
    parsed = parse_temporal_entity(vehicle(speed=[obs(120, "2020-08-01T12:03:00Z"),
                                                  obs(80, "2020-08-01T12:05:00Z")]))
    assert parsed["type"] == ["Vehicle"]
    assert [i["value"] for i in parsed["attrs"]["speed"]] == [120, 80]


def test_records_are_stamped_and_identified_by_the_broker() -> None:
    body = vehicle(speed=[obs(120, "2020-08-01T12:03:00Z", instanceId="urn:x:mine",
                              createdAt="1999-01-01T00:00:00Z")])
    history = temporal_history(parse_temporal_entity(body), NOW, ids())
    (speed,) = history.instances
    assert speed.instance_id == "urn:ngsi-ld:Instance:i1"
    assert (speed.created_at, speed.modified_at) == (NOW, NOW)
    assert history.entity.types == ("Vehicle",)


@pytest.mark.parametrize("body", [
    {"type": "Vehicle"},                                   # ETSI 007_03_01: no id
    {"id": "", "type": "Vehicle"},
    {"id": "invalidId", "type": "Vehicle"},                # 007_03_02: not a URI
    {"id": EID},                                           # creation needs a type
    [vehicle()],
    vehicle(speed=[obs(50, "2026-03-01T02:00:00+03:00")]),  # 5744_01_03: not UTC
    vehicle(speed=[obs(50, "2026-03-01")]),
    vehicle(expiresAt="urn:ngsi-ld:null"),                  # 5611_01_02
    vehicle(speed=[120]),
    vehicle(speed=[{"type": "Unknown", "value": 1}]),
    vehicle(**{"invalid(Name": [obs(1, "2020-08-01T12:03:00Z")]}),
    vehicle(scope=["not a scope"]),
    vehicle(scope=[{"type": "Relationship", "object": "urn:x:1"}]),
    vehicle(speed={"type": "Property", "values": [[1]]}),
    vehicle(speed={"type": "Relationship", "values": [[1, "2020-08-01T12:03:00Z"]]}),
])
def test_invalid_temporal_entities_are_bad_request_data(body: Any) -> None:
    with pytest.raises(BadRequestData):
        parse_temporal_entity(body)


def test_the_null_records_a_deletion_in_the_temporal_evolution() -> None:
    # 5.5.4 and ETSI 5611_01_01: the NGSI-LD Null is legal temporal input
    records = stored(vehicle(speed=[obs(1, "2026-01-01T00:00:00Z"),
                                    obs("urn:ngsi-ld:null", "2026-01-02T00:00:00Z")]))
    assert [(r.value, r.deleted_at, r.observed_at) for r in records] == [
        (1, None, "2026-01-01T00:00:00Z"),
        ("urn:ngsi-ld:null", NOW, "2026-01-02T00:00:00Z"),
    ]


def test_the_simplified_temporal_representation_is_read_back_into_instances() -> None:
    body = vehicle(speed={"type": "Property", "values": [[1, "2026-01-01T00:00:00Z"]]},
                   name={"type": "LanguageProperty", "datasetId": "urn:x:ds",
                         "languageMaps": [[{"languageMap": {"en": "x"}},
                                           "2026-01-01T00:00:00Z"]]})
    speed, name = stored(body)
    assert (speed.kind, speed.value, speed.observed_at) == ("Property", 1, "2026-01-01T00:00:00Z")
    assert (name.kind, name.value, name.dataset_id) == ("LanguageProperty", {"en": "x"}, "urn:x:ds")


def test_a_scope_member_is_one_instance_observed_at_the_write() -> None:
    (scope,) = stored(vehicle(scope=["/Madrid/Gardens", "/CompanyA"]))
    assert (scope.attribute, scope.value, scope.observed_at) == (
        SCOPE, ["/Madrid/Gardens", "/CompanyA"], NOW)


def test_a_scope_evolution_keeps_its_observation_times() -> None:
    # 4.5.6 as ETSI 5744_03 posts it
    body = vehicle(scope=[
        {"type": "Property", "value": "/R", "observedAt": "2026-03-01T10:00:00Z"},
        {"type": "Property", "value": "/S", "observedAt": "2026-03-01T12:30:00Z"}])
    assert [(s.value, s.observed_at) for s in stored(body)] == [
        (["/R"], "2026-03-01T10:00:00Z"), (["/S"], "2026-03-01T12:30:00Z")]


def test_a_fragment_for_add_attributes_needs_no_id() -> None:
    fragment = parse_temporal_attributes({"added": [obs(1, "2020-09-01T12:03:00Z")],
                                          "@context": ["https://example.org/ctx.jsonld"]})
    assert list(fragment["attrs"]) == ["added"]
    with pytest.raises(BadRequestData):
        parse_temporal_attributes("not an object")


def test_the_current_state_is_the_latest_observation_of_each_series() -> None:
    body = vehicle(
        speed=[obs(80, "2020-08-01T12:05:00Z"), obs(120, "2020-08-01T12:03:00Z")],
        fuel=[obs(40, "2020-08-01T14:07:00Z", datasetId="urn:x:fuel"),
              obs(67, "2020-08-01T12:03:00Z")],
        gone=[obs(1, "2020-08-01T12:00:00Z"), obs("urn:ngsi-ld:null", "2020-08-01T13:00:00Z")],
        scope=[{"type": "Property", "value": "/A", "observedAt": "2020-08-01T12:00:00Z"},
               {"type": "Property", "value": "/B", "observedAt": "2020-08-01T11:00:00Z"}],
    )
    state = latest_state(parse_temporal_entity(body))
    assert state["type"] == ["Vehicle"] and state["scope"] == ["/A"]
    assert [i["value"] for i in state["attrs"]["speed"]] == [80]
    assert sorted(i["value"] for i in state["attrs"]["fuel"]) == [40, 67]
    assert "gone" not in state["attrs"]


def test_an_upsert_replaces_the_observation_of_the_same_instant() -> None:
    # ETSI 008_01: created with speed 120@12:03 and 80@12:05, then posted again with
    # 121@12:03, 80@12:05 and 100@12:07: three instances, the first corrected
    first = stored(vehicle(speed=[obs(120, "2020-09-01T12:03:00Z"),
                                  obs(80, "2020-09-01T12:05:00Z")],
                           fuel=[obs(40, "2020-09-01T14:07:00Z", datasetId="urn:x:fuel")]))
    second = stored(vehicle(speed=[obs(121, "2020-09-01T12:03:00.000Z"),
                                   obs(80, "2020-09-01T12:05:00Z"),
                                   obs(100, "2020-09-01T12:07:00Z")],
                            fuel=[obs(40, "2020-09-01T14:07:00Z")]), LATER, "j")
    merged = upsert(first, second)
    assert [(i.attribute, i.value, i.dataset_id) for i in merged] == [
        ("speed", 121, None), ("speed", 80, None), ("fuel", 40, "urn:x:fuel"),
        ("speed", 100, None), ("fuel", 40, None)]
    corrected = merged[0]
    assert corrected.instance_id == first[0].instance_id and corrected.created_at == NOW
    assert corrected.modified_at == LATER


def test_instances_without_observedAt_are_always_added() -> None:
    first = stored(vehicle(speed=[{"type": "Property", "value": 1}]))
    second = stored(vehicle(speed=[{"type": "Property", "value": 1}]), LATER, "j")
    assert len(upsert(first, second)) == 2


def test_a_partial_update_corrects_one_instance_and_keeps_its_id() -> None:
    # ETSI 016_01
    (speed,) = stored(vehicle(speed=[obs(120, "2020-09-01T12:03:00Z", unitCode="KMH")]))
    fragment = parse_instance_fragment({"type": "Property", "value": 129,
                                        "observedAt": "2020-09-01T12:03:00Z"})
    patched = patch_instance(speed, fragment, LATER)
    assert (patched.instance_id, patched.value, patched.modified_at) == (
        speed.instance_id, 129, LATER)
    assert patched.created_at == NOW and patched.members == {"unitCode": "KMH"}
    assert patch_instance(speed, parse_instance_fragment({"unitCode": "MTS"}), LATER).value == 120
    relationship = patch_instance(speed, {"type": "Relationship", "object": "urn:x:1"}, LATER)
    assert (relationship.kind, relationship.value) == ("Relationship", "urn:x:1")
    with pytest.raises(BadRequestData):
        patch_instance(speed, {"type": "Relationship"}, LATER)


@pytest.mark.parametrize("body", [{}, [], {"datasetId": "urn:x:other", "value": 1},
                                  {"type": "Property", "value": None}])
def test_invalid_instance_fragments_are_bad_request_data(body: Any) -> None:
    with pytest.raises(BadRequestData):
        parse_instance_fragment(body)


def test_attribute_deletion_selects_default_dataset_or_all() -> None:
    # ETSI 015_01: without deleteAll nor datasetId, the default instances go
    records = stored(vehicle(fuel=[obs(67, "2020-09-01T12:03:00Z"),
                                   obs(40, "2020-09-01T14:07:00Z", datasetId="urn:x:fuel")]))
    by_default = attribute_selector()
    assert [r.value for r in records if by_default(r)] == [67]
    assert [r.value for r in records if attribute_selector("urn:x:fuel")(r)] == [40]
    assert [r.value for r in records if attribute_selector("@none")(r)] == [67]
    assert len([r for r in records if attribute_selector(delete_all=True)(r)]) == 2


def test_instance_ids_in_paths_are_uris() -> None:
    assert check_instance_id("urn:ngsi-ld:Instance:1") == "urn:ngsi-ld:Instance:1"
    with pytest.raises(BadRequestData):
        check_instance_id("invalidId")  # ETSI 016_02_03, 017_02_03


def test_the_retention_cut_off_is_one_duration_before_now() -> None:
    cutoff = retention_cutoff("2026-05-01T00:00:00Z", parse_duration("P90D"))
    assert cutoff == to_micros("2026-01-31T00:00:00Z")
    assert retention_cutoff("2026-03-31T00:00:00Z", parse_duration("P1M")) == to_micros(
        "2026-02-28T00:00:00Z")
    with pytest.raises(NgsiLdError):
        retention_cutoff("2026-03-31T00:00:00Z", parse_duration("PT0S"))
