"""Selecting instances (ngsi_ld.temporal.window) and temporal pagination
(ngsi_ld.temporal.pagination, clause 6.3.10), with the ETSI 020_13, 020_14 and
021_15 data shapes rebuilt here."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.temporal import (
    Instance,
    TemporalQuery,
    format_micros,
    instance_limit,
    keep_last,
    paginate,
    parse_temporal_query,
    select,
    to_micros,
)

_ids = itertools.count()


def inst(attribute: str, at: str | None, value: Any = 0, dataset: str | None = None,
         deleted: str | None = None) -> Instance:
    return Instance(attribute, f"urn:x:{next(_ids)}", "Property", value, dataset_id=dataset,
                    observed_at=at, created_at="2026-01-01T00:00:00Z", deleted_at=deleted)


def minutes(attribute: str, day: int, first: int, count: int) -> list[Instance]:
    """``count`` instances a minute apart from 01:<first> of 2020-01-<day>."""
    return [inst(attribute, f"2020-01-{day:02d}T01:{m:02d}:00Z", m)
            for m in range(first, first + count)]


def q(**params: str) -> TemporalQuery:
    return parse_temporal_query(params)


def times(instances: list[Instance]) -> list[str]:
    return [i.observed_at or "" for i in instances]


# select, keep_last -------------------------------------------------------------------

def test_select_orders_by_the_queried_time_and_drops_instances_without_it() -> None:
    recorded = [inst("speed", "2020-08-01T12:07:00Z", 100), inst("speed", None, 1),
                inst("speed", "2020-08-01T12:03:00Z", 120),
                inst("fuel", "2020-08-01T12:05:00.000Z", 67)]
    selected = select(recorded, TemporalQuery())
    assert {k: [i.value for i in v] for k, v in selected.items()} == {
        "speed": [120, 100], "fuel": [67]}


def test_deleted_at_keeps_only_the_deletion_records() -> None:
    # ETSI 020_17: timeproperty=deletedAt shows the deleted attribute only
    recorded = [inst("fuel", "2020-08-01T12:03:00Z", 67),
                inst("fuel", None, "urn:ngsi-ld:null", deleted="2024-12-09T17:16:12.031Z"),
                inst("name", "2024-12-01T12:00:00Z", "x")]
    selected = select(recorded, TemporalQuery(timeproperty="deletedAt"))
    assert list(selected) == ["fuel"] and selected["fuel"][0].value == "urn:ngsi-ld:null"


def test_last_n_counts_per_attribute_and_dataset() -> None:
    recorded = [*minutes("speed", 1, 1, 5), inst("speed", "2020-01-01T01:30:00Z", 9, "urn:ds")]
    kept = keep_last(select(recorded, TemporalQuery()), 2)
    assert [(i.value, i.dataset_id) for i in kept["speed"]] == [(4, None), (5, None), (9, "urn:ds")]


# 6.3.10 ------------------------------------------------------------------------------

TWENTY = select(minutes("speed", 1, 1, 20) + minutes("fuelLevel", 1, 3, 20), TemporalQuery())
BEFORE, AFTER = "2019-01-01T01:01:00Z", "2021-01-01T01:01:00Z"


def test_the_limit_is_lastn_when_lastn_is_within_it() -> None:
    assert instance_limit(TemporalQuery(last_n=7), 10) == (7, True)
    assert instance_limit(TemporalQuery(last_n=20), 10) == (10, False)
    assert instance_limit(TemporalQuery(), 10) == (10, False)


def test_lastn_within_the_limit_is_the_whole_answer() -> None:
    # ETSI 020_05: lastN of 4 or 7 over 5 instances answers 200
    five = select(minutes("speed", 1, 1, 5), TemporalQuery())
    for n, expected in ((4, 4), (7, 5)):
        page = paginate([five], TemporalQuery(last_n=n), limit=10)
        assert not page.partial and len(page.entities[0]["speed"]) == expected


def test_forwards_without_lastn() -> None:
    # ETSI 020_13_01: 206, Content-Range from the least to the most recent timestamp
    page = paginate([TWENTY], TemporalQuery(), limit=10)
    assert page.partial and page.content_range is not None
    assert page.content_range.header() == "date-time 2020-01-01T01:01:00Z-2020-01-01T01:10:00Z/*"
    assert times(page.entities[0]["speed"])[-1] == "2020-01-01T01:10:00Z"
    assert times(page.entities[0]["fuelLevel"]) == [f"2020-01-01T01:{m:02d}:00Z"
                                                   for m in range(3, 11)]


def test_forwards_from_time_at() -> None:
    # ETSI 020_13_07 and 020_13_08: the range starts at timeAt
    for params in ({"timerel": "after", "timeAt": BEFORE},
                   {"timerel": "between", "timeAt": BEFORE, "endTimeAt": AFTER}):
        page = paginate([TWENTY], q(**params), limit=10)
        assert page.content_range is not None
        assert page.content_range.header().startswith(f"date-time {BEFORE}-2020-01-01T01:10:00Z")


def test_backwards_with_lastn_above_the_limit() -> None:
    # ETSI 020_13_02 to 020_13_05: size is lastN, the range runs backwards
    cases = [({}, "2020-01-01T01:22:00Z"), ({"timerel": "before", "timeAt": AFTER}, AFTER),
             ({"timerel": "between", "timeAt": BEFORE, "endTimeAt": AFTER}, AFTER),
             ({"timerel": "after", "timeAt": BEFORE}, "2020-01-01T01:22:00Z")]
    for params, start in cases:
        page = paginate([TWENTY], q(lastN="20", **params), limit=10)
        assert page.content_range is not None
        assert page.content_range.header() == f"date-time {start}-2020-01-01T01:13:00Z/20"
        assert times(page.entities[0]["speed"])[0] == "2020-01-01T01:13:00Z"


def test_unsynchronized_attributes_leave_one_empty() -> None:
    # ETSI 020_14: 59 instances of speed on Jan 1, 59 of fuelLevel on Jan 2
    sixty = select(minutes("speed", 1, 1, 59) + minutes("fuelLevel", 2, 1, 59), TemporalQuery())
    forwards = paginate([sixty], q(timerel="after", timeAt=BEFORE), limit=10)
    assert forwards.entities[0]["fuelLevel"] == [] and len(forwards.entities[0]["speed"]) == 10
    backwards = paginate([sixty], q(lastN="100", timerel="before", timeAt=AFTER), limit=10)
    assert backwards.entities[0]["speed"] == [] and len(backwards.entities[0]["fuelLevel"]) == 10


def test_a_query_page_cuts_every_entity_at_the_same_instant() -> None:
    # ETSI 021_15: a second vehicle observed in September is cut forwards, kept backwards
    september = select([inst("speed", "2020-09-01T12:03:00Z"),
                        inst("speed", "2020-09-01T12:07:00Z")], TemporalQuery())
    forwards = paginate([TWENTY, september], q(timerel="after", timeAt=BEFORE), limit=10)
    assert forwards.entities[1]["speed"] == []
    backwards = paginate([TWENTY, september], q(lastN="20", timerel="after", timeAt=BEFORE),
                         limit=10)
    assert backwards.content_range is not None
    assert backwards.content_range.header() == (
        "date-time 2020-09-01T12:07:00Z-2020-01-01T01:13:00Z/20")
    assert len(backwards.entities[1]["speed"]) == 2


def test_nothing_cut_is_a_full_answer() -> None:
    page = paginate([TWENTY], TemporalQuery(), limit=20)
    assert not page.partial and page.entities == [TWENTY]


_SERIES = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([None, "urn:ds"]),
              st.integers(0, 40)), max_size=60)


@settings(max_examples=150)
@given(_SERIES, _SERIES, st.integers(1, 6), st.one_of(st.none(), st.integers(1, 12)),
       st.sampled_from([{}, {"timerel": "after", "timeAt": "2020-01-01T00:05:00Z"},
                        {"timerel": "before", "timeAt": "2020-01-01T00:30:00Z"}]))
def test_a_page_never_leaves_a_hole(first: list[Any], second: list[Any], limit: int,
                                    last_n: int | None, window: dict[str, str]) -> None:
    """Whatever the data: at most ``limit`` instances per series; a partial page holds
    every selected instance on its side of the range end and none beyond it."""
    query = q(**window, **({"lastN": str(last_n)} if last_n else {}))
    entities = [select([inst(a, f"2020-01-01T00:{m:02d}:00Z", m, ds) for a, ds, m in data], query)
                for data in (first, second)]
    page = paginate(entities, query, limit)
    count, exact = instance_limit(query, limit)
    for entity in page.entities:
        for instances in entity.values():
            for dataset in (None, "urn:ds"):
                assert len([i for i in instances if i.dataset_id == dataset]) <= count
    if page.content_range is None:
        if not exact:  # a full answer holds everything selected
            assert [{k: v for k, v in e.items()} for e in page.entities] == entities
        return
    rng = page.content_range
    backwards = last_n is not None
    assert rng.size == (last_n if backwards else None)
    kept = {i.instance_id for e in page.entities for v in e.values() for i in v}
    for entity in entities:
        for instances in entity.values():
            for i in instances:
                t = to_micros(i.observed_at or "")
                if (t > rng.end) if backwards else (t < rng.end):
                    assert i.instance_id in kept, format_micros(t)
                if i.instance_id in kept:
                    assert (t >= rng.end) if backwards else (t <= rng.end)
