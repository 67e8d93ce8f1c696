"""Temporal query parameters (ngsi_ld.temporal.params), durations and instants: what a
client may ask and the error it gets otherwise, as the ETSI suite checks them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData, InvalidRequest
from ngsi_ld.projection import parse_projection
from ngsi_ld.temporal import (
    TEMPORAL_OPERATIONS,
    Duration,
    TemporalQuery,
    check_projection,
    format_micros,
    parse_duration,
    parse_last_n,
    parse_temporal_options,
    parse_temporal_order,
    parse_temporal_post,
    parse_temporal_query,
    to_micros,
)
from ngsi_ld.temporal.instants import from_datetime, to_datetime

T = "2020-08-01T12:05:00Z"


def us(text: str) -> int:
    return to_micros(text)


# 4.11 ------------------------------------------------------------------------------

def test_without_timerel_every_instant_is_in_the_window() -> None:
    query = parse_temporal_query({})
    assert query == TemporalQuery() and query.contains(0)
    assert query.timeproperty == "observedAt"


@pytest.mark.parametrize(("params", "inside", "outside"), [
    # 4.11: before is an exclusive bound, after an inclusive one (ETSI 021_26)
    ({"timerel": "before", "timeAt": T}, "2020-08-01T12:04:59.999Z", T),
    ({"timerel": "after", "timeAt": T}, T, "2020-08-01T12:04:59.999999Z"),
    ({"timerel": "after", "timeAt": "2020-08-01T12:05:00.000Z"}, T, "2020-08-01T12:04:00Z"),
    ({"timerel": "between", "timeAt": "2020-08-01T12:03:00Z", "endTimeAt": T},
     "2020-08-01T12:03:00.000Z", T),
    ({"timerel": "after", "timeAt": "2020-08-01T14:05:00+02:00"}, T, "2020-08-01T12:04:00Z"),
])
def test_window_bounds(params: dict[str, str], inside: str, outside: str) -> None:
    query = parse_temporal_query(params)
    assert query.contains(us(inside)) and not query.contains(us(outside))


@pytest.mark.parametrize("params", [
    {"timerel": "after"},                                    # 020_09_01
    {"timerel": "before"},                                   # 020_09_02
    {"timerel": "between", "timeAt": T},                     # 020_09_03, 021_26_08
    {"timerel": "during", "timeAt": T},                      # 021_26_07
    {"timerel": "after", "timeAt": "2020-08-01"},            # 021_26_09: a Date
    {"timeAt": T},
    {"timerel": "between", "timeAt": T, "endTimeAt": T},
    {"timerel": "between", "timeAt": T, "endTimeAt": "yesterday"},
    {"timeproperty": "expiresAt"},                           # 021_27_06
    {"lastN": "0"}, {"lastN": "-1"}, {"lastN": "2.5"}, {"lastN": "x"}, {"lastN": ""},
])
def test_invalid_temporal_queries_are_bad_request_data(params: dict[str, str]) -> None:
    with pytest.raises(BadRequestData):
        parse_temporal_query(params)


def test_a_query_may_require_a_window() -> None:
    with pytest.raises(BadRequestData):
        parse_temporal_query({"lastN": "3"}, required=True)
    query = parse_temporal_query({"timerel": "after", "timeAt": T, "lastN": "3",
                                  "timeproperty": "deletedAt"}, required=True)
    assert (query.last_n, query.timeproperty, query.lower, query.upper) == (
        3, "deletedAt", us(T), None)


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "1e3", 10**10, None])
def test_last_n_is_a_positive_integer(value: Any) -> None:
    with pytest.raises(BadRequestData):
        parse_last_n(value)


def test_last_n_accepts_integers_and_their_decimal_text() -> None:
    assert parse_last_n(4) == parse_last_n("4") == 4


# 6.3.12 ----------------------------------------------------------------------------

def test_format_takes_precedence_over_options() -> None:
    # ETSI 021_19_02
    options = parse_temporal_options({"format": "temporalValues", "options": "aggregatedValues",
                                      "aggrMethods": "sum"})
    assert options.format == "temporalValues" and options.aggregation is None


@pytest.mark.parametrize("params", [
    {"format": "invalidFormat"}, {"options": "invalidOptions"},       # 021_20_01, _02
    {"options": "temporalValues,invalidOptions"},                     # 021_20_03
    {"format": "temporalValues", "options": "aggregatedValues,invalidOptions"},  # 021_20_04
    {"options": "keyValues"},
])
def test_unknown_format_or_options_are_invalid_request(params: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest):
        parse_temporal_options(params)


def test_options_read_representation_and_system_attributes() -> None:
    options = parse_temporal_options({"options": "sysAttrs,temporalValues"})
    assert (options.format, options.sys_attrs) == ("temporalValues", True)
    assert parse_temporal_options({}).format == "normalized"
    with pytest.raises(BadRequestData):
        parse_temporal_options({"options": "temporalValues,aggregatedValues"})


def test_the_aggregated_representation_needs_its_methods() -> None:
    with pytest.raises(BadRequestData):
        parse_temporal_options({"options": "aggregatedValues"})
    options = parse_temporal_options({"format": "aggregatedValues", "aggrMethods": "avg, max,avg",
                                      "aggrPeriodDuration": "PT1H"})
    assert options.aggregation is not None
    assert options.aggregation.methods == ("avg", "max")
    assert options.aggregation.period == Duration(micros=3600 * 10**6)
    whole = parse_temporal_options({"options": "aggregatedValues", "aggrMethods": "sum"})
    assert whole.aggregation is not None and whole.aggregation.period.is_zero


def test_invalid_aggregation_parameters_name_themselves() -> None:
    # ETSI 5244_01_02 and 021_27_09 look for the parameter's name in the answer
    with pytest.raises(BadRequestData, match="aggrMethods"):
        parse_temporal_options({"options": "aggregatedValues", "aggrMethods": "avg,bogus"})
    with pytest.raises(BadRequestData, match="aggrPeriodDuration"):
        parse_temporal_options({"options": "aggregatedValues", "aggrMethods": "avg",
                                "aggrPeriodDuration": "bogus"})


# 5.2.21, 5.2.44: the POST query -----------------------------------------------------

def _post(temporal_q: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "Query", "entities": [{"type": "Vehicle"}], "temporalQ": temporal_q, **extra}


def test_post_query_reads_temporal_q() -> None:
    query, options = parse_temporal_post(_post({"timerel": "after", "timeAt": T, "lastN": 1}))
    assert (query.timerel, query.last_n, options.format) == ("after", 1, "normalized")


@pytest.mark.parametrize("temporal_q", [
    {"timerel": "after", "timeAt": T, "lastN": 0},           # 021_27_02
    {"timerel": "after", "timeAt": T, "lastN": 2.5},         # 021_27_03
    {"timerel": "during", "timeAt": T},                      # 021_27_04
    {"timerel": "between", "timeAt": T},                     # 021_27_05
    {"timerel": "after", "timeAt": T, "timeproperty": "expiresAt"},  # 021_27_06
    {"timerel": "after", "timeAt": T, "aggrMethods": ["avg"], "aggrPeriodDuration": "bogus"},
    {"lastN": 3},
])
def test_invalid_temporal_q_is_bad_request_data(temporal_q: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        parse_temporal_post(_post(temporal_q))


def test_aggregation_methods_in_the_body_ask_for_the_aggregated_representation() -> None:
    # ETSI 021_27_07 (an array), 021_27_08 (a comma-separated string), 5244_01_01
    for temporal_q, extra in [
        ({"timerel": "after", "timeAt": T, "aggrMethods": ["avg"]}, {}),
        ({"timerel": "after", "timeAt": T, "aggrMethods": "avg,max"}, {}),
        ({"timerel": "after", "timeAt": T},
         {"aggrParams": {"aggrMethods": ["avg"], "aggrPeriodDuration": "PT0S"}}),
    ]:
        _, options = parse_temporal_post(_post(temporal_q, **extra))
        assert options.format == "aggregatedValues" and options.aggregation is not None
    _, options = parse_temporal_post(_post({"timerel": "after", "timeAt": T,
                                            "aggrMethods": "avg"}), {"format": "temporalValues"})
    assert options.format == "temporalValues"


def test_a_post_query_needs_temporal_q() -> None:
    with pytest.raises(BadRequestData):
        parse_temporal_post({"type": "Query", "entities": [{"type": "Vehicle"}]})
    with pytest.raises(BadRequestData, match="aggrMethods"):
        parse_temporal_post(_post({"timerel": "after", "timeAt": T},
                                  aggrParams={"aggrMethods": ["bogus"]}))  # 5244_01_02


# 4.21, 5.7.3.4, 5.7.4.4 --------------------------------------------------------------

def test_projections_exclude_each_other_and_linked_entities() -> None:
    pick, omit = parse_projection("speed"), parse_projection("speed", "omit")
    check_projection(None, pick, None)
    for attrs, p, o in [(None, pick, omit), (["fuelLevel"], pick, None),  # 020_22
                        (["fuelLevel"], None, omit),
                        (None, parse_projection("owner{name}"), None)]:       # 5731_01_01
        with pytest.raises(BadRequestData):
            check_projection(attrs, p, o)


def test_a_temporal_query_is_ordered_by_id_only() -> None:
    # ETSI 021_23 and 5741_01_06
    assert parse_temporal_order("id") is False and parse_temporal_order("id;desc") is True
    for order in ("name", "createdAt", "name.subProperty", "id,name"):
        with pytest.raises(BadRequestData):
            parse_temporal_order(order)


def test_every_temporal_operation_accepts_local() -> None:
    assert all("local" in names for names in TEMPORAL_OPERATIONS.values())
    assert {"timerel", "lastN", "aggrMethods"} <= TEMPORAL_OPERATIONS["queryTemporal"]


# 4.5.19.1: durations -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "months", "seconds"), [
    ("PT1H", 0, 3600), ("P1D", 0, 86400), ("P1W", 0, 7 * 86400), ("PT0S", 0, 0), ("P0D", 0, 0),
    ("P1Y2M", 14, 0), ("P3Y6M4DT12H30M5S", 42, 4 * 86400 + 12 * 3600 + 30 * 60 + 5),
    ("PT0.5S", 0, 0.5), ("PT1M", 0, 60), ("P1M", 1, 0),
])
def test_durations(text: str, months: int, seconds: float) -> None:
    assert parse_duration(text) == Duration(months, round(seconds * 10**6))


@pytest.mark.parametrize("text", [
    "bogus", "P", "PT", "P1DT", "1H", "PT1H30", "P1W2D", "-PT1H", "P1.5D", "PT0.0001S",
    "P1001Y", "P2023-01-01T00:00:00", "PT1234567890S", 3600, None,
])
def test_invalid_durations(text: Any) -> None:
    with pytest.raises(BadRequestData):
        parse_duration(text)


def test_calendar_periods_count_from_the_first_boundary() -> None:
    month = parse_duration("P1M")
    start = us("2024-01-31T00:00:00Z")
    assert format_micros(month.boundary(start, 1)) == "2024-02-29T00:00:00Z"
    assert format_micros(month.boundary(start, 2)) == "2024-03-31T00:00:00Z"
    assert month.index(start, us("2024-02-29T00:00:00Z")) == 1
    assert month.index(start, us("2024-02-28T23:59:59Z")) == 0
    assert month.index(start, us("2023-12-31T00:00:00Z")) == -1


@given(st.integers(0, 4000), st.sampled_from(["P1M", "P2M", "P1Y", "P1M1D", "PT90M", "P1W"]),
       st.integers(0, 10**14))
def test_every_instant_falls_in_the_period_its_index_names(
    days: int, text: str, offset: int
) -> None:
    duration = parse_duration(text)
    start = us("2020-01-31T06:00:00Z") + days * 86400 * 10**6
    instant = start + offset
    k = duration.index(start, instant)
    assert duration.boundary(start, k) <= instant < duration.boundary(start, k + 1)


# instants ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "shortest"), [
    ("2020-08-01T12:03:00Z", "2020-08-01T12:03:00Z"),
    ("2020-08-01T12:03:00.000Z", "2020-08-01T12:03:00Z"),
    ("2020-08-01T12:03:00.120Z", "2020-08-01T12:03:00.120Z"),
    ("2020-08-01T12:03:00.123456Z", "2020-08-01T12:03:00.123456Z"),
    ("2020-08-01T14:03:00+02:00", "2020-08-01T12:03:00Z"),
])
def test_instants_are_written_in_their_shortest_exact_form(text: str, shortest: str) -> None:
    assert format_micros(to_micros(text)) == shortest


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.just(UTC)))
def test_instants_round_trip(moment: datetime) -> None:
    micros = from_datetime(moment)
    assert to_datetime(micros) == moment
    assert to_micros(format_micros(micros)) == micros
    assert (to_datetime(micros) - moment) == timedelta(0)
