"""The temporal representations (ngsi_ld.temporal.render): normalized (4.5.7, 4.5.8),
simplified temporalValues (4.5.9) and aggregatedValues (4.5.19), as the ETSI suite's
expectations write them."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.temporal import (
    SCOPE,
    Aggregation,
    Instance,
    TemporalEntity,
    TemporalQuery,
    aggregate,
    format_micros,
    parse_duration,
    parse_temporal_entity,
    render_temporal,
    select,
    temporal_history,
    to_micros,
)

EID = "urn:ngsi-ld:Vehicle:1"
VOCAB = "https://example.org/"
_ids = itertools.count()


def inst(attribute: str, at: str | None, value: Any, kind: str = "Property",
         **fields: Any) -> Instance:
    return Instance(attribute, f"urn:ngsi-ld:Instance:{next(_ids)}", kind, value,
                    observed_at=at, **fields)


def entity(*instances: Instance, query: TemporalQuery | None = None,
           **record: Any) -> TemporalEntity:
    return TemporalEntity(EID, ("Vehicle",), select(instances, query or TemporalQuery()),
                          **record)


def no_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: no_ids(v) for k, v in value.items() if k != "instanceId"}
    if isinstance(value, list):
        return [no_ids(v) for v in value]
    return value


SPEED = [inst("speed", "2020-08-01T12:03:00Z", 120, created_at="2026-01-01T00:00:00.000Z",
              modified_at="2026-01-01T00:00:00.000Z"),
         inst("speed", "2020-08-01T12:05:00Z", 80)]


def test_normalized_is_an_array_of_instances_with_their_ids() -> None:
    out = render_temporal(entity(*SPEED))
    assert no_ids(out) == {"id": EID, "type": "Vehicle", "speed": [
        {"type": "Property", "value": 120, "observedAt": "2020-08-01T12:03:00Z"},
        {"type": "Property", "value": 80, "observedAt": "2020-08-01T12:05:00Z"}]}
    assert [i["instanceId"] for i in out["speed"]] == [s.instance_id for s in SPEED]


def test_system_attributes_with_sys_attrs() -> None:
    out = render_temporal(entity(*SPEED, created_at="2026-01-01T00:00:00.000Z"), sys_attrs=True)
    assert out["createdAt"] == "2026-01-01T00:00:00.000Z"
    assert out["speed"][0]["createdAt"] == out["speed"][0]["modifiedAt"]
    assert "createdAt" not in render_temporal(entity(*SPEED))["speed"][0]


def test_a_deletion_shows_its_null_and_the_queried_deleted_at() -> None:
    # ETSI 020_17 (vehicle-temporal-representation-languageproperty-020-17.jsonld)
    deleted = inst("name", None, {"@none": "urn:ngsi-ld:null"}, "LanguageProperty",
                   deleted_at="2024-12-11T15:01:49.723Z")
    out = render_temporal(entity(deleted, query=TemporalQuery(timeproperty="deletedAt")),
                          timeproperty="deletedAt")
    assert no_ids(out) == {"id": EID, "type": "Vehicle", "name": [
        {"type": "LanguageProperty", "languageMap": {"@none": "urn:ngsi-ld:null"},
         "deletedAt": "2024-12-11T15:01:49.723Z"}]}


def test_simplified_pairs_per_kind() -> None:
    # 4.5.9 as ETSI 020_10, 020_12, 020_15, 020_16, 020_18 and 459_01 read it
    at = "2026-08-10T00:00:01Z"
    out = render_temporal(entity(
        inst("speed", at, 1),
        inst("location", at, {"type": "Point", "coordinates": [1.0, 2.0]}, "GeoProperty"),
        inst("parking", at, "urn:x:p1", "Relationship"),
        inst("street", at, {"fr": "Grand Place"}, "LanguageProperty"),
        inst("category", at, "monument", "VocabProperty"),
        inst("raw", at, {"value": 120}, "JsonProperty"),
        inst("depths", at, [1.2, 3.4], "ListProperty"),
        inst("route", at, ["urn:x:r1", "urn:x:r2"], "ListRelationship"),
    ), fmt="temporalValues")
    assert {k: v for k, v in out.items() if k not in ("id", "type")} == {
        "speed": {"type": "Property", "values": [[1, at]]},
        "location": {"type": "GeoProperty",
                     "values": [[{"type": "Point", "coordinates": [1.0, 2.0]}, at]]},
        "parking": {"type": "Relationship", "objects": [["urn:x:p1", at]]},
        "street": {"type": "LanguageProperty",
                   "languageMaps": [[{"languageMap": {"fr": "Grand Place"}}, at]]},
        "category": {"type": "VocabProperty", "vocabs": [[{"vocab": "monument"}, at]]},
        "raw": {"type": "JsonProperty", "jsons": [[{"json": {"value": 120}}, at]]},
        "depths": {"type": "ListProperty", "valueLists": [[[1.2, 3.4], at]]},
        "route": {"type": "ListRelationship", "objectLists": [[["urn:x:r1", "urn:x:r2"], at]]},
    }


def test_simplified_groups_a_multi_attribute_by_dataset() -> None:
    # ETSI 021_18_01 (vehicle-temporal-representation-speed-attribute.json)
    out = render_temporal(entity(
        inst("speed", "2020-09-01T12:03:00Z", 120),
        inst("speed", "2020-09-01T12:05:00Z", 60, dataset_id="urn:ngsi-ld:Dataset:Speed"),
        inst("speed", "2020-09-01T12:15:00Z", 62, dataset_id="urn:ngsi-ld:Dataset:Speed"),
    ), fmt="temporalValues")
    assert out["speed"] == [
        {"type": "Property", "values": [[120, "2020-09-01T12:03:00Z"]]},
        {"type": "Property", "datasetId": "urn:ngsi-ld:Dataset:Speed",
         "values": [[60, "2020-09-01T12:05:00Z"], [62, "2020-09-01T12:15:00Z"]]}]
    single = render_temporal(entity(inst("fuel", "2020-09-01T14:07:00Z", 40,
                                         dataset_id="urn:x:fuel")), fmt="temporalValues")
    assert single["fuel"] == {"type": "Property", "datasetId": "urn:x:fuel",
                              "values": [[40, "2020-09-01T14:07:00Z"]]}


def test_the_scope_is_a_property_named_scope() -> None:
    # 4.5.6; ETSI 456_01, 020_19 and 020_20
    scope = inst(SCOPE, "2026-08-10T00:00:00.123Z", ["/New"],
                 created_at="2026-08-10T00:00:00.123Z", modified_at="2026-08-10T00:00:00.123Z")
    gone = inst(SCOPE, None, [], deleted_at="2024-12-19T08:43:32.422Z")
    out = render_temporal(entity(scope), sys_attrs=True)
    assert no_ids(out["scope"]) == [{
        "type": "Property", "value": "/New", "observedAt": "2026-08-10T00:00:00.123Z",
        "createdAt": "2026-08-10T00:00:00.123Z", "modifiedAt": "2026-08-10T00:00:00.123Z"}]
    deleted = entity(gone, query=TemporalQuery(timeproperty="deletedAt"))
    assert no_ids(render_temporal(deleted, timeproperty="deletedAt")["scope"]) == [
        {"type": "Property", "value": [], "deletedAt": "2024-12-19T08:43:32.422Z"}]
    assert render_temporal(deleted, fmt="temporalValues", timeproperty="deletedAt")["scope"] == {
        "type": "Property", "values": [[[], "2024-12-19T08:43:32.422Z"]]}
    assert "scope" not in render_temporal(entity(scope), omit={"scope"})


def test_pick_and_omit_name_members_and_attributes() -> None:
    # ETSI 020_21 and 021_21
    both = entity(*SPEED, inst("fuelLevel", "2020-08-01T12:03:00Z", 67))
    assert list(render_temporal(both, pick={"speed"})) == ["speed"]
    assert list(render_temporal(both, pick={"id", "speed"})) == ["id", "speed"]
    assert list(render_temporal(both, omit={"speed"})) == ["id", "type", "fuelLevel"]
    assert list(render_temporal(both, omit={"type", "speed"})) == ["id", "fuelLevel"]
    assert render_temporal(both, pick={"unknown"}) == {}


def test_language_and_compaction() -> None:
    expanded = TemporalEntity(EID, (VOCAB + "Vehicle",), {
        VOCAB + "street": [inst(VOCAB + "street", "2020-08-01T12:03:00Z",
                                {"fr": "Grand Place", "nl": "Grote Markt"}, "LanguageProperty")],
        VOCAB + "category": [inst(VOCAB + "category", "2020-08-01T12:03:00Z",
                                  VOCAB + "monument", "VocabProperty")],
    })

    def compact(iri: str) -> str:
        return iri.removeprefix(VOCAB)

    out = render_temporal(expanded, compact=compact, lang="nl")
    assert out["type"] == "Vehicle"
    assert no_ids(out["street"]) == [{"type": "Property", "value": "Grote Markt", "lang": "nl",
                                      "observedAt": "2020-08-01T12:03:00Z"}]
    assert out["category"][0]["vocab"] == "monument"
    simplified = render_temporal(expanded, fmt="temporalValues", compact=compact, lang="fr")
    assert simplified["street"] == {"type": "Property",
                                    "values": [["Grand Place", "2020-08-01T12:03:00Z"]]}
    assert simplified["category"]["vocabs"] == [[{"vocab": "monument"}, "2020-08-01T12:03:00Z"]]


def test_an_attribute_emptied_by_pagination_stays_an_empty_array() -> None:
    # ETSI 020_14 reads body["fuelLevel"] and expects it empty
    cut = TemporalEntity(EID, ("Vehicle",), {"speed": SPEED, "fuelLevel": []})
    assert render_temporal(cut)["fuelLevel"] == []
    assert render_temporal(cut, fmt="temporalValues")["fuelLevel"] == []


def test_aggregated_values_are_triples_per_method() -> None:
    # 4.5.19.0 and ETSI 020_11_03
    data = entity(*SPEED, inst("speed", "2020-08-01T12:04:00Z", 7, dataset_id="urn:x:ds"),
                  inst("parked", "2020-08-01T12:04:00Z", "urn:x:p", "Relationship"))
    aggregation = Aggregation(("avg", "max", "distinctCount"), parse_duration("PT1H"))
    out = render_temporal(data, fmt="aggregatedValues",
                          aggregated=aggregate(data.series, aggregation, TemporalQuery()))
    period = ["2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"]
    assert out["speed"] == [
        {"type": "Property", "avg": [[100.0, *period]], "max": [[120.0, *period]],
         "distinctCount": [[2, *period]]},
        {"type": "Property", "datasetId": "urn:x:ds", "avg": [[7.0, *period]],
         "max": [[7.0, *period]], "distinctCount": [[1, *period]]}]
    assert out["parked"] == {"type": "Relationship", "avg": [], "max": [],
                             "distinctCount": [[1, *period]]}


_POINTS = st.lists(
    st.tuples(st.sampled_from(["speed", "name"]), st.sampled_from([None, "urn:x:ds"]),
              st.one_of(st.integers(-100, 100), st.text(max_size=5), st.booleans()),
              st.integers(0, 10**9)),
    min_size=1, max_size=25)


def _observations(records: Any) -> list[tuple[str, Any, str | None, int]]:
    return sorted(((r.attribute, r.value, r.dataset_id, to_micros(r.observed_at or ""))
                   for r in records), key=repr)


@settings(max_examples=100)
@given(_POINTS, st.sampled_from(["normalized", "temporalValues"]))
def test_a_rendered_evolution_posted_back_gives_the_same_observations(
    points: list[tuple[str, str | None, Any, int]], fmt: str
) -> None:
    """What the broker renders is valid temporal input (5.2.20 accepts the normalized
    and the simplified representation) and means the same observations."""
    recorded = [inst(name, format_micros(1_700_000_000_000_000 + offset * 1000), value,
                     dataset_id=dataset) for name, dataset, value, offset in points]
    rendered = render_temporal(entity(*recorded), fmt=fmt)  # type: ignore[arg-type]
    posted = parse_temporal_entity(rendered)
    again = temporal_history(posted, "2026-01-01T00:00:00Z", lambda: f"urn:x:{next(_ids)}")
    assert _observations(again.instances) == _observations(recorded)
