"""Entity maps (5.14, 5.2.39) and paging a distributed query with one (5.5.9.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation import (
    LOCAL,
    EntityMap,
    Pager,
    apply_map_update,
    build_entity_map,
    by_source,
    lifetime,
    render_entity_map,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MAP = "urn:ngsi-ld:EntityMap:1"


def five() -> EntityMap:
    # 5593_01: five local vehicles
    return build_entity_map(MAP, NOW + timedelta(hours=1),
                            {LOCAL: [f"urn:ngsi-ld:Vehicle:em5593-{i}" for i in range(5)]})


def test_a_map_records_who_holds_each_entity_by_id() -> None:
    entity_map = build_entity_map(
        MAP, NOW + timedelta(hours=1),
        {"urn:r:b": ["urn:c", "urn:a"], LOCAL: ["urn:b", "urn:a"], "urn:r:a": ["urn:a"]},
        query={"type": "Vehicle"}, linked_maps={"urn:r:b": "urn:ngsi-ld:EntityMap:remote"})
    assert entity_map.ids == ["urn:a", "urn:b", "urn:c"]
    assert entity_map.entities["urn:a"] == (LOCAL, "urn:r:a", "urn:r:b")
    # 5141_01_01: the 5.2.39 object, no entity payload
    assert render_entity_map(entity_map) == {
        "id": MAP, "type": "EntityMap", "expiresAt": "2026-01-01T01:00:00.000Z",
        "entityMap": {"urn:a": [LOCAL, "urn:r:a", "urn:r:b"], "urn:b": [LOCAL],
                      "urn:c": ["urn:r:b"]},
        "linkedMaps": {"urn:r:b": "urn:ngsi-ld:EntityMap:remote"},
    }
    assert by_source(entity_map, ["urn:a", "urn:c", "urn:unknown"]) == {
        LOCAL: ["urn:a"], "urn:r:a": ["urn:a"], "urn:r:b": ["urn:a", "urn:c"]}


def test_the_lifetime_is_an_iso_duration_bounded_by_the_broker() -> None:
    assert lifetime(None) == timedelta(hours=1)
    assert lifetime("PT5M") == timedelta(minutes=5)
    # 5141_02_03: ten years are not honoured verbatim
    assert lifetime("P3650D") == timedelta(days=1)
    # 5144_01_04
    for bad in ("1hour", "PT", "P", "-PT1H", "PT0S"):
        with pytest.raises(BadRequestData, match="entityMapLifetime"):
            lifetime(bad)


def test_an_update_changes_the_expiry_only() -> None:
    entity_map = five()
    # 5142_01_01: output-only members are ignored, the broker bounds the expiry
    updated = apply_map_update(entity_map, {"expiresAt": "2099-01-01T00:00:00Z",
                                            "entityMap": {"urn:injected": [LOCAL]}}, NOW)
    assert updated.entities == entity_map.entities
    assert updated.expires_at == "2026-01-02T00:00:00.000Z"
    # 5141_02_04: an expiry in the past is taken: the map has expired
    past = apply_map_update(entity_map, {"expiresAt": "2000-01-01T00:00:00Z"}, NOW)
    assert past.expired(NOW) and not entity_map.expired(NOW)
    assert apply_map_update(entity_map, {"linkedMaps": {}}, NOW) == entity_map
    for bad, detail in (({"expiresAt": "tomorrow"}, "DateTime"),   # 5142_01_02
                        ({"expiresAt": 5}, "DateTime"),
                        ({"id": "urn:other"}, "id"),
                        ({"type": "Map"}, "type"),
                        ({"colour": "red"}, "unknown"),
                        (["expiresAt"], "JSON object")):
        with pytest.raises(BadRequestData, match=detail):
            apply_map_update(entity_map, bad, NOW)


def page(entity_map: EntityMap, offset: int, limit: int,
         fitting: set[str] | None = None) -> Pager:
    pager = Pager(entity_map, offset, limit)
    while ids := pager.wanted():
        pager.found(ids if fitting is None else [i for i in ids if i in fitting])
    return pager


def test_pages_fill_to_the_maximum_and_say_whether_more_follow() -> None:
    # 5593_01_01: limit=2 over five: two and a next page; the last page holds one
    first = page(five(), 0, 2)
    assert first.page == [f"urn:ngsi-ld:Vehicle:em5593-{i}" for i in (0, 1)] and first.more
    last = page(five(), 4, 2)
    assert last.page == ["urn:ngsi-ld:Vehicle:em5593-4"] and not last.more
    assert page(five(), 6, 2).page == []


def test_entities_that_no_longer_fit_are_pruned_and_the_page_still_fills() -> None:
    # 5593_01_02: entity 1 was deleted after the map was made
    gone = "urn:ngsi-ld:Vehicle:em5593-1"
    fitting = set(five().ids) - {gone}
    pager = page(five(), 0, 3, fitting)
    assert pager.page == [f"urn:ngsi-ld:Vehicle:em5593-{i}" for i in (0, 2, 3)]
    assert pager.pruned == [gone]
    assert gone not in pager.remaining.entities and len(pager.remaining.entities) == 4
    # 5593_01_03: the count walks the whole map
    everything = page(pager.remaining, 0, len(pager.remaining.entities), fitting)
    assert len(everything.page) == 4 and not everything.more


def test_the_pager_is_told_before_it_is_asked_again() -> None:
    pager = Pager(five(), 0, 2)
    pager.wanted()
    with pytest.raises(RuntimeError):
        pager.wanted()
    with pytest.raises(BadRequestData):
        Pager(five(), -1, 2)


@given(size=st.integers(0, 12), offset=st.integers(0, 14), limit=st.integers(0, 6),
       gone=st.sets(st.integers(0, 11)))
def test_a_page_is_the_fitting_entities_in_map_order(size: int, offset: int, limit: int,
                                                     gone: set[int]) -> None:
    ids = [f"urn:e:{i:02d}" for i in range(size)]
    entity_map = build_entity_map(MAP, NOW, {LOCAL: ids})
    fitting = {f"urn:e:{i:02d}" for i in range(size) if i not in gone}
    pager = page(entity_map, offset, limit, fitting)
    after = [i for i in ids[offset:] if i in fitting]
    assert pager.page == after[:limit]
    assert set(pager.pruned).isdisjoint(fitting)
    assert not pager.more or len(pager.page) == limit
