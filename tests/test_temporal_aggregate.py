"""The reference aggregation (ngsi_ld.temporal.aggregate, clause 4.5.19): periods and
the semantics of each method on numbers, booleans, strings, arrays, times and
relationships.  It is the oracle the store-side aggregations will be tested against."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.temporal import (
    AGGR_METHODS,
    Aggregation,
    Instance,
    TemporalQuery,
    aggregate,
    apply_method,
    format_micros,
    parse_duration,
    parse_temporal_query,
    select,
    to_micros,
)

_ids = itertools.count()


def inst(at: str, value: Any, attribute: str = "speed", kind: str = "Property",
         dataset: str | None = None, deleted: bool = False) -> Instance:
    return Instance(attribute, f"urn:x:{next(_ids)}", kind, value, dataset_id=dataset,
                    observed_at=at, deleted_at="2026-01-01T00:00:00Z" if deleted else None)


def rows(series: Any, method: str) -> list[list[Any]]:
    return [[value, format_micros(start), format_micros(end)]
            for value, start, end in series.results[method]]


VEHICLE = [inst("2020-08-01T12:03:00Z", 120), inst("2020-08-01T12:05:00Z", 80),
           inst("2020-08-01T12:07:00Z", 100),
           inst("2020-08-01T12:03:00Z", 67, "fuelLevel"),
           inst("2020-08-01T13:05:00Z", 53, "fuelLevel"),
           inst("2020-08-01T14:07:00Z", 40, "fuelLevel")]


def run(instances: list[Instance], methods: str, period: str,
        query: TemporalQuery | None = None) -> dict[str, Any]:
    query = query or TemporalQuery()
    aggregation = Aggregation(tuple(methods.split(",")), parse_duration(period))  # type: ignore[arg-type]
    return aggregate(select(instances, query), aggregation, query)


def test_hourly_average_starts_at_the_first_instance_without_a_window() -> None:
    # ETSI 020_11_01 (vehicle-temporal-representation-aggregated-avg-PT1H.json)
    result = run(VEHICLE, "avg,max", "PT1H")
    (speed,), (fuel,) = result["speed"], result["fuelLevel"]
    assert rows(speed, "avg") == [[100.0, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"]]
    assert rows(speed, "max") == [[120.0, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"]]
    assert rows(fuel, "avg") == [[67.0, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"],
                                 [53.0, "2020-08-01T13:03:00Z", "2020-08-01T14:03:00Z"],
                                 [40.0, "2020-08-01T14:03:00Z", "2020-08-01T15:03:00Z"]]


def test_periods_start_at_time_at() -> None:
    # ETSI 021_17_04: after 2020-01-01T12:03 by days still lands on 2020-08-01T12:03
    query = parse_temporal_query({"timerel": "after", "timeAt": "2020-01-01T12:03:00Z"})
    (speed,) = run(VEHICLE, "min,max", "P1D", query)["speed"]
    assert rows(speed, "min") == [[80.0, "2020-08-01T12:03:00Z", "2020-08-02T12:03:00Z"]]
    query = parse_temporal_query({"timerel": "between", "timeAt": "2020-08-01T12:00:00Z",
                                  "endTimeAt": "2020-08-01T13:00:00Z"})
    (speed,) = run(VEHICLE, "max,avg", "PT4M", query)["speed"]  # the example of annex C
    assert rows(speed, "max") == [[120.0, "2020-08-01T12:00:00Z", "2020-08-01T12:04:00Z"],
                                  [100.0, "2020-08-01T12:04:00Z", "2020-08-01T12:08:00Z"]]
    assert rows(speed, "avg")[1][0] == 90.0


def test_a_zero_period_spans_the_whole_range() -> None:
    (speed,) = run(VEHICLE, "totalCount", "PT0S")["speed"]
    # no window: from the earliest to the latest instance of the entity, included
    assert rows(speed, "totalCount") == [[3, "2020-08-01T12:03:00Z", "2020-08-01T14:07:00Z"]]
    query = parse_temporal_query({"timerel": "before", "timeAt": "2020-08-01T12:06:00Z"})
    (speed,) = run(VEHICLE, "totalCount", "P0D", query)["speed"]
    assert rows(speed, "totalCount") == [[2, "2020-08-01T12:03:00Z", "2020-08-01T12:06:00Z"]]


def test_calendar_months_have_their_own_lengths() -> None:
    data = [inst(f"2024-{m:02d}-15T00:00:00Z", m) for m in range(1, 5)]
    query = parse_temporal_query({"timerel": "after", "timeAt": "2024-01-31T00:00:00Z"})
    (series,) = run(data, "sum", "P1M", query)["speed"]
    assert rows(series, "sum") == [[2.0, "2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z"],
                                   [3.0, "2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z"],
                                   [4.0, "2024-03-31T00:00:00Z", "2024-04-30T00:00:00Z"]]


def test_series_aggregate_per_dataset_and_deletions_count_for_nothing() -> None:
    data = [inst("2020-08-01T12:03:00Z", 1), inst("2020-08-01T12:04:00Z", 5, dataset="urn:ds"),
            inst("2020-08-01T12:05:00Z", "urn:ngsi-ld:null", deleted=True)]
    default, other = run(data, "totalCount,sum", "PT0S")["speed"]
    assert (default.dataset_id, rows(default, "totalCount")[0][0]) == (None, 1)
    assert (other.dataset_id, rows(other, "sum")[0][0]) == ("urn:ds", 5.0)


@pytest.mark.parametrize(("method", "values", "expected"), [
    ("totalCount", [1, 1, "a"], 3),
    ("distinctCount", [1, 1.0, True, "1", [1], {"a": 1}, {"a": 1}], 5),
    ("sum", [1, 2.5, True], 4.5),                    # true is 1 (NOTE of Table 4.5.19.1-1)
    ("avg", [False, True, True, True], 0.75),
    ("min", [3, -1, 2], -1.0),
    ("max", [False, True], 1.0),
    ("sumsq", [1, 2, 3], 14.0),
    ("stddev", [2, 4, 4, 4, 5, 5, 7, 9], 2.0),       # the population standard deviation
    ("stddev", [7], 0.0),
    ("min", ["pear", "apple", "fig"], "apple"),      # "first value in lexicographical order"
    ("max", ["pear", "apple", "Zebra"], "pear"),
    ("avg", ["a", "b"], None),                       # N/A for strings
    ("sum", [{"a": 1}], None),                       # N/A for objects
    ("sum", [[1, 2], [3]], 3.0),                     # arrays: the sum of their sizes
    ("avg", [[1, 2], [3]], 1.5),
    ("max", [[1, 2], [3], []], 2.0),
    ("stddev", [[1, 2]], None),
    ("min", [3, "a"], 3.0),                          # numbers first
    ("max", [{"@type": "DateTime", "@value": "2020-01-01T10:00:00+02:00"},
             {"@type": "https://uri.etsi.org/ngsi-ld/DateTime", "@value": "2020-01-01T09:00:00Z"}],
     "2020-01-01T09:00:00Z"),                        # Table 4.5.19.1-2: temporal order
    ("min", [{"@type": "Date", "@value": "2020-03-01"}, {"@type": "Date", "@value": "2019-12-31"}],
     "2019-12-31"),
    ("avg", [{"@type": "Time", "@value": "10:00:00"}, {"@type": "Time", "@value": "11:00:30"}],
     "10:30:15"),
    ("avg", [{"@type": "DateTime", "@value": "2020-01-01T09:00:00Z"}], None),
    ("max", [], None),
])
def test_method_semantics(method: str, values: list[Any], expected: Any) -> None:
    assert apply_method(method, values) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["Relationship", "ListRelationship", "LanguageProperty",
                                  "JsonProperty", "GeoProperty"])
def test_relationships_and_objects_are_only_counted(kind: str) -> None:
    # Table 4.5.19.1-3: totalCount and distinctCount only
    values = ["urn:a", "urn:b", "urn:a"]
    assert apply_method("totalCount", values, kind) == 3
    assert apply_method("distinctCount", values, kind) == 2
    assert all(apply_method(m, values, kind) is None for m in ("min", "max", "sum", "avg"))


def test_a_method_that_applies_to_nothing_leaves_its_array_empty() -> None:
    data = [inst("2020-08-01T12:03:00Z", "red"), inst("2020-08-01T12:05:00Z", "blue")]
    (series,) = run(data, "avg,max", "PT1H")["speed"]
    assert series.results["avg"] == [] and rows(series, "max")[0][0] == "red"


_NUMBERS = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False),
                     st.booleans())


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 7 * 86400), _NUMBERS), min_size=1, max_size=80),
       st.sampled_from(["PT0S", "PT1H", "PT90M", "P1D", "PT7M13S"]),
       st.integers(0, 86400))
def test_every_value_lands_in_exactly_one_period_and_the_methods_agree(
    points: list[tuple[int, Any]], period: str, offset: int
) -> None:
    base = to_micros("2026-03-01T00:00:00Z")
    data = [inst(format_micros(base + s * 10**6), v) for s, v in points]
    query = parse_temporal_query({"timerel": "after",
                                  "timeAt": format_micros(base - offset * 10**6)})
    (series,) = run(data, ",".join(AGGR_METHODS), period, query)["speed"]
    counts = series.results["totalCount"]
    assert sum(c for c, _, _ in counts) == len(points)
    starts = [start for _, start, _ in counts]
    assert starts == sorted(set(starts))
    duration = parse_duration(period)
    for (count, start, end), (total, _, _), (avg, _, _), (low, _, _), (high, _, _), \
            (sumsq, _, _), (dev, _, _) in zip(
            counts, series.results["sum"], series.results["avg"], series.results["min"],
            series.results["max"], series.results["sumsq"], series.results["stddev"],
            strict=True):
        inside = [float(v) for s, v in points
                  if start <= base + s * 10**6 and (duration.is_zero or base + s * 10**6 < end)]
        assert len(inside) == count
        assert math.isclose(total, math.fsum(inside), rel_tol=1e-9, abs_tol=1e-6)
        assert low == min(inside) and high == max(inside)
        assert low - 1e-6 <= avg <= high + 1e-6
        assert math.isclose(avg * count, total, rel_tol=1e-9, abs_tol=1e-6)
        # stddev^2 = E[x^2] - E[x]^2, up to the rounding of the squares
        assert abs(dev * dev - (sumsq / count - avg * avg)) <= 1e-9 * (sumsq / count) + 1e-9
