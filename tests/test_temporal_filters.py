"""Entity selection on history (ngsi_ld.temporal.filters, clause 5.7.4.4): q, geo-queries
and scopeQ judged on the instances of the time window, with the ETSI 5744 fixtures."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ngsi_ld.query import parse_geo_query, parse_q, parse_scope_q
from ngsi_ld.temporal import SCOPE, Instance, TemporalQuery, parse_temporal_query
from ngsi_ld.temporal.filters import scope_validity, select_entity

IN, OUT = "2026-03-01T12:00:00Z", "2026-01-05T00:00:00Z"
DAY = parse_temporal_query({"timerel": "between", "timeAt": "2026-03-01T00:00:00Z",
                            "endTimeAt": "2026-03-02T00:00:00Z"})
_ids = itertools.count()


def inst(attribute: str, value: Any, at: str = IN, kind: str = "Property",
         **fields: Any) -> Instance:
    return Instance(attribute, f"urn:x:{next(_ids)}", kind, value, observed_at=at, **fields)


# ETSI 5744_01 and 5744_02 fixtures
FLEET: dict[str, list[Instance]] = {
    "fast": [inst("speed", 30), inst("speed", 90, OUT), inst("heading", 45),
             inst("route", "550")],
    "slow": [inst("speed", 10), inst("speed", 80, OUT), inst("heading", 170)],
    "shapes": [inst("name", "m"), inst("ref", "urn:dest:qp1", kind="Relationship"),
               inst("tags", ["a", "b"])],
    "nowin": [inst("speed", 99, OUT)],
    "multi": [inst("speed", 5), inst("speed", 60, dataset_id="urn:ngsi-ld:Dataset:qp1")],
    "deleted": [inst("speed", "urn:ngsi-ld:null", deleted_at=IN), inst("speed", 1, OUT)],
}


def selected(q: str, fleet: dict[str, list[Instance]] = FLEET) -> set[str]:
    expr = parse_q(q)
    return {name for name, history in fleet.items()
            if select_entity(name, ["Vehicle"], history, DAY, q=expr) is not None}


@pytest.mark.parametrize(("q", "expected"), [
    ("speed>25", {"fast", "multi"}),          # 5744_01_01, _13: out of window never counts
    ("speed>=5;heading<90", {"fast"}),        # 5744_01_04
    ("speed>25|heading>100", {"fast", "slow", "multi"}),  # 5744_01_05
    ("speed!=10", {"fast", "multi"}),          # 5744_01_07
    ("!heading;speed>25", {"multi"}),          # 5744_01_08
    ("speed==10..40", {"fast", "slow"}),      # 5744_01_09
    ('route=="550","551"', {"fast"}),          # 5744_01_10
    ('ref=="urn:dest:qp1"', {"shapes"}),       # 5744_01_11
    ('tags=="a"', {"shapes"}),                 # 5744_01_12
    ('tags!="a"', set()),                      # 5744_06_05: != on an array is universal
    ('speed=="urn:ngsi-ld:null"', set()),      # a deletion record has no value
])
def test_q_is_judged_on_the_windowed_instances(q: str, expected: set[str]) -> None:
    assert selected(q) == expected


def test_the_window_also_selects_the_instances_returned() -> None:
    series = select_entity("fast", ["Vehicle"], FLEET["fast"], DAY, q=parse_q("speed>25"))
    assert series is not None and [i.value for i in series["speed"]] == [30]


def test_the_geo_query_sees_only_windowed_positions() -> None:
    # ETSI 5744_02_14 and 5744_04_02
    near = parse_geo_query("near;maxDistance==1000", "Point", "[17.1,48.1]")
    here, far = {"type": "Point", "coordinates": [17.1, 48.1]}, {"type": "Point",
                                                                  "coordinates": [2.3, 48.8]}
    inside = [inst("location", far, kind="GeoProperty"), inst("location", here, kind="GeoProperty")]
    outside = [inst("location", here, OUT, kind="GeoProperty"),
               inst("location", far, kind="GeoProperty")]
    assert select_entity("in", ["Vehicle"], inside, DAY, geo_q=near) is not None
    assert select_entity("out", ["Vehicle"], outside, DAY, geo_q=near) is None


def scope(value: str | list[str], at: str) -> Instance:
    return inst(SCOPE, [value] if isinstance(value, str) else value, at)


HOUR = parse_temporal_query({"timerel": "between", "timeAt": "2026-03-01T12:00:00Z",
                             "endTimeAt": "2026-03-01T13:00:00Z"})
SCOPED: dict[str, list[Instance]] = {   # ETSI 5744_03 fixtures
    "ab": [scope("/A/B", "2026-03-01T10:00:00Z"), inst("speed", "abval", "2026-03-01T12:05:00Z")],
    "xx": [scope("/X", "2026-03-01T10:00:00Z"), inst("speed", "xxval", "2026-03-01T12:05:00Z")],
    "bare": [inst("speed", "bareval", "2026-03-01T12:05:00Z")],
    "both": [scope(["/A/B", "/C"], "2026-03-01T10:00:00Z"),
             inst("speed", "bothval", "2026-03-01T12:05:00Z")],
    "mid": [scope("/M", "2026-03-01T12:10:00Z"), inst("speed", "midpre", "2026-03-01T12:05:00Z"),
            inst("speed", "midpost", "2026-03-01T12:15:00Z")],
    "rep": [scope("/R", "2026-03-01T10:00:00Z"), scope("/S", "2026-03-01T12:30:00Z"),
            inst("speed", "repold", "2026-03-01T12:15:00Z"),
            inst("speed", "repnew", "2026-03-01T12:45:00Z")],
    "late": [scope("/Z", "2026-03-01T14:00:00Z"), inst("speed", "lateval", "2026-03-01T12:05:00Z")],
}


def scoped(expr: str) -> dict[str, list[Any]]:
    out = {}
    for name, history in SCOPED.items():
        series = select_entity(name, ["Vehicle"], history, HOUR, scope_q=parse_scope_q(expr))
        if series is not None:
            out[name] = [i.value for i in series.get("speed", [])]
    return out


@pytest.mark.parametrize(("expr", "expected"), [
    ("/A/B", {"ab", "both"}),                                     # 5744_03_01
    ("/Y", set()),                                                # 5744_03_02
    ("/A/#", {"ab", "both"}),                                     # 5744_03_03
    ("/#", {"ab", "xx", "both", "mid", "rep"}),                   # 5744_03_04
    ("/X|/M", {"xx", "mid"}),                                     # 5744_03_05
    ("(/A/B;/C)", {"both"}),                                      # 5744_03_06
    ("/Z", set()),                                                # 5744_03_10
])
def test_scope_q_follows_the_validity_of_each_scope(expr: str, expected: set[str]) -> None:
    assert set(scoped(expr)) == expected


def test_only_instances_observed_while_the_scope_was_valid_are_kept() -> None:
    assert scoped("/M") == {"mid": ["midpost"]}     # 5744_03_07
    assert scoped("/R") == {"rep": ["repold"]}      # 5744_03_08
    assert scoped("/S") == {"rep": ["repnew"]}      # 5744_03_09


def test_the_scope_valid_at_the_window_start_is_shown() -> None:
    # 5744_03_11: set at 10:00, before the window, still presented
    series = select_entity("ab", ["Vehicle"], SCOPED["ab"], HOUR, scope_q=parse_scope_q("/A/B"))
    assert series is not None and [s.value for s in series[SCOPE]] == [["/A/B"]]


def test_a_removed_scope_ends_the_validity() -> None:
    removal = inst(SCOPE, [], None, deleted_at="2026-03-01T11:00:00Z")
    validity = scope_validity([scope("/A", "2026-03-01T10:00:00Z"), removal])
    assert [(i.value, end is not None) for i, (_, end) in validity] == [(["/A"], True), ([], False)]
    history = [scope("/A", "2026-03-01T10:00:00Z"), removal,
               inst("speed", 1, "2026-03-01T12:05:00Z")]
    assert select_entity("e", [], history, HOUR, scope_q=parse_scope_q("/A")) is None


def test_without_filters_the_scope_is_windowed_like_an_attribute() -> None:
    series = select_entity("ab", ["Vehicle"], SCOPED["ab"], TemporalQuery())
    assert series is not None and list(series) == ["speed", SCOPE]
