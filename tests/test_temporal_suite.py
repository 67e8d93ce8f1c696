"""The ETSI suite's temporal data through ngsi_ld.temporal: each fixture posted, queried
and rendered as its test does, compared with the test's expectation file the way the
suite compares (order-insensitive, instanceId ignored, observedAt by instant, system
timestamps by presence).

The suite is read from $ETSI_SUITE (default /work/shared/etsi/suite); without it the
tests are skipped.  The HTTP steps (JSON-LD compaction, the store) are stood in for:
names stay as the fixtures write them.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from ngsi_ld.temporal import (
    Instance,
    TemporalEntity,
    aggregate,
    attribute_selector,
    paginate,
    parse_instance_fragment,
    parse_temporal_entity,
    parse_temporal_options,
    parse_temporal_query,
    patch_instance,
    render_temporal,
    select,
    temporal_history,
    to_micros,
    upsert,
)

SUITE = Path(os.environ.get("ETSI_SUITE", "/work/shared/etsi/suite"))
DATA = SUITE / "data" / "temporalEntities"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="the ETSI suite is not available")
EID = "urn:ngsi-ld:Vehicle:suite"
_ids = itertools.count()


def post(name: str, now: str = "2026-01-01T00:00:00.000Z") -> list[Instance]:
    body = json.loads((DATA / name).read_text())
    body["id"] = EID
    history = temporal_history(parse_temporal_entity(body), now,
                               lambda: f"urn:ngsi-ld:Instance:{next(_ids)}")
    return list(history.instances)


def expected(name: str) -> Any:
    return json.loads((DATA / "expectations" / name).read_text())


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("instanceId", "@context"):
                continue
            if key in ("createdAt", "modifiedAt", "deletedAt"):
                out[key] = "<present>"
            elif key == "observedAt":
                out[key] = to_micros(item)
            else:
                out[key] = _canonical(item)
        return out
    if isinstance(value, list):
        return sorted((_canonical(v) for v in value), key=lambda v: orjson.dumps(v))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def same(actual: Any, wanted: Any, entity_id: str | None = EID) -> None:
    if entity_id is not None and isinstance(wanted, dict):
        wanted = {**wanted, "id": entity_id}
    assert _canonical(actual) == _canonical(wanted)


def show(instances: list[Instance], params: dict[str, str] | None = None,
         attrs: set[str] | None = None, **render: Any) -> dict[str, Any]:
    params = params or {}
    query = parse_temporal_query(params)
    series = select(instances, query)
    if attrs is not None:
        series = {k: v for k, v in series.items() if k in attrs}
    page = paginate([series], query, limit=10)
    options = parse_temporal_options(params)
    entity = TemporalEntity(EID, ("Vehicle",), page.entities[0])
    aggregated = None
    if options.aggregation is not None:
        aggregated = aggregate(series, options.aggregation, query)
    return render_temporal(entity, fmt=options.format, sys_attrs=options.sys_attrs,
                           timeproperty=query.timeproperty, aggregated=aggregated, **render)


VEHICLE = "2020-08-vehicle-temporal-representation.jsonld"


@pytest.mark.parametrize(("params", "attrs", "expectation"), [
    ({}, None, "vehicle-temporal-representation-020-02.jsonld"),
    ({}, {"fuelLevel"}, "vehicle-temporal-representation-020-03-01.jsonld"),
    ({}, {"fuelLevel", "speed"}, "vehicle-temporal-representation-020-03-02.jsonld"),
    ({"timerel": "after", "timeAt": "2020-08-01T13:03:00Z"}, None,
     "vehicle-temporal-representation-020-04-01.jsonld"),
    ({"timerel": "before", "timeAt": "2020-08-01T12:05:00Z"}, None,
     "vehicle-temporal-representation-020-04-02.jsonld"),
    ({"timerel": "between", "timeAt": "2020-08-01T12:00:00Z",
      "endTimeAt": "2020-08-01T13:00:00Z"}, None,
     "vehicle-temporal-representation-020-04-03.jsonld"),
    ({"options": "temporalValues"}, None, "vehicle-temporal-representation-020-10.jsonld"),
    ({"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "PT1H"}, None,
     "vehicle-temporal-representation-aggregated-avg-PT1H.json"),
    ({"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "PT1H"},
     {"fuelLevel"}, "vehicle-temporal-representation-aggregated-avg-PT1H-fuelLevel.json"),
    ({"options": "aggregatedValues", "aggrMethods": "avg,max", "aggrPeriodDuration": "PT1H"},
     None, "vehicle-temporal-representation-aggregated-avg-max-PT1H.json"),
    ({"options": "aggregatedValues", "aggrMethods": "min,max", "aggrPeriodDuration": "P1D",
      "timerel": "after", "timeAt": "2020-01-01T12:03:00Z"}, None,
     "vehicle-temporal-representation-aggregated-min-max-P1D.json"),
])
def test_retrieve_the_vehicle(params: dict[str, str], attrs: set[str] | None,
                              expectation: str) -> None:
    # ETSI 020_02, 020_03, 020_04, 020_10, 020_11 and 021_17
    same(show(post(VEHICLE), params, attrs), expected(expectation))


@pytest.mark.parametrize(("last_n", "expectation"), [
    ("4", "vehicle-temporal-representation-020-05-01.jsonld"),
    ("7", "vehicle-temporal-representation-020-05-02.jsonld"),
])
def test_last_n(last_n: str, expectation: str) -> None:
    instances = post("2020-08-vehicle-temporal-representation-multiple-instances.jsonld")
    same(show(instances, {"lastN": last_n}), expected(expectation))


@pytest.mark.parametrize(("fixture", "options", "expectation"), [
    ("vehicle-language-property-temporal-representation.jsonld", "",
     "vehicle-language-property-normalized-temporal-representation.jsonld"),
    ("vehicle-language-property-temporal-representation.jsonld", "temporalValues",
     "vehicle-language-property-simplified-temporal-representation.jsonld"),
    ("vehicle-json-property-temporal-representation.jsonld", "",
     "vehicle-json-property-temporal-representation.json"),
    ("vehicle-json-property-temporal-representation.jsonld", "temporalValues",
     "vehicle-json-property-simplified-temporal-representation.json"),
    ("vehicle-vocab-property-temporal-representation.jsonld", "",
     "vehicle-vocab-property-temporal-representation.json"),
    ("vehicle-vocab-property-temporal-representation.jsonld", "temporalValues",
     "vehicle-vocab-property-simplified-temporal-representation.json"),
])
def test_attribute_kinds(fixture: str, options: str, expectation: str) -> None:
    # ETSI 020_12, 020_15, 020_16
    same(show(post(fixture), {"options": options} if options else {}), expected(expectation))


@pytest.mark.parametrize(("pick", "omit", "expectation"), [
    ({"speed"}, None, "pick-omit/vehicle-pick-speed.json"),
    (None, {"speed"}, "pick-omit/vehicle-omit-speed.json"),
    ({"id", "speed"}, None, "pick-omit/vehicle-pick-id-speed.json"),
    (None, {"type", "speed"}, "pick-omit/vehicle-omit-type-speed.json"),
])
def test_pick_and_omit(pick: set[str] | None, omit: set[str] | None, expectation: str) -> None:
    # ETSI 020_21
    wanted = expected(expectation)
    same(show(post(VEHICLE), pick=pick, omit=omit), wanted,
         EID if "id" in wanted else None)


@pytest.mark.parametrize(("attrs", "datasets", "expectation"), [
    ({"speed"}, None, "vehicle-temporal-representation-speed-attribute.json"),
    (None, {"urn:ngsi-ld:Dataset:Common"}, "vehicle-temporal-representation-common-datasetid.json"),
    (None, {"urn:ngsi-ld:Dataset:Common", "urn:ngsi-ld:Dataset:Speed"},
     "vehicle-temporal-representation-two-datasetids.json"),
    (None, {None}, "vehicle-temporal-representation-default-instances.json"),
    ({"speed"}, {None}, "vehicle-temporal-representation-speed-default-instance.json"),
    ({"fuelLevel"}, {"urn:ngsi-ld:Dataset:fuel"},
     "vehicle-temporal-representation-fuellevel-attribute-fuel-datasetid.json"),
])
def test_dataset_filters(attrs: set[str] | None, datasets: set[str | None] | None,
                         expectation: str) -> None:
    # ETSI 021_18: attrs and datasetId select series before the simplified rendering
    instances = [i for i in post("vehicle-temporal-representation-with-multi-attributes-"
                                 "instances.jsonld")
                 if datasets is None or i.dataset_id in datasets]
    params = {"timerel": "after", "timeAt": "2020-08-01T12:04:00Z", "options": "temporalValues"}
    wanted = [{**entity, "id": EID} for entity in expected(expectation)]
    same([show(instances, params, attrs)], wanted, None)


def test_an_upsert_corrects_and_adds() -> None:
    # ETSI 008_01
    first = post("vehicle-create-temporal-representation.jsonld")
    second = post("vehicle-temporal-representation-update.jsonld", "2026-01-02T00:00:00.000Z")
    same(show(upsert(first, second)), expected("vehicle-temporal-representation-update.jsonld"))


@pytest.mark.parametrize(("dataset", "delete_all", "expectation"), [
    (None, False, "vehicle-temporal-representation-delete-fuelLevel.jsonld"),
    ("urn:ngsi-ld:Vehicle:12345-fuel", False,
     "vehicle-temporal-representation-delete-fuelLevel-datasetid.jsonld"),
    (None, True, "vehicle-temporal-representation-deleteall-fuelLevel.jsonld"),
])
def test_delete_attribute(dataset: str | None, delete_all: bool, expectation: str) -> None:
    # ETSI 015_01
    selector = attribute_selector(dataset, delete_all)
    kept = [i for i in post("vehicle-temporal-representation.jsonld")
            if not (i.attribute == "fuelLevel" and selector(i))]
    same(show(kept), expected(expectation))


def test_delete_and_correct_one_instance() -> None:
    # ETSI 017_01 and 016_01: the first speed instance, by its instanceId
    instances = post("vehicle-temporal-representation.jsonld")
    first = next(i for i in instances if i.attribute == "speed")
    deleted = [i for i in instances if i.instance_id != first.instance_id]
    same(show(deleted), expected("vehicle-temporal-representation-delete-speed-instanceid.jsonld"))
    fragment = json.loads((DATA / "fragments" /
                           "vehicle-temporal-modify-attribute-instance-fragment.jsonld").read_text())
    patched = patch_instance(first, parse_instance_fragment(fragment), "2026-01-02T00:00:00Z")
    corrected = [patched if i is first else i for i in instances]
    same(show(corrected),
         expected("vehicle-temporal-representation-modify-attribute-instance.jsonld"))
