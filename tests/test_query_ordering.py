"""Entity ordering (4.23): parsing orderBy and collations, sorting entities."""

from __future__ import annotations

from typing import Any

import pytest
import pyuca
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query.collation import parse_collation, sort_key
from ngsi_ld.query.ordering import (
    order_entities,
    parse_order_by,
    parse_ordering,
    resolve_ordering,
)

COLLATOR = pyuca.Collator()


def thing(n: int, value: Any = None, **extra: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if value is not None:
        attrs["v"] = [{"type": "Property", "value": value}]
    attrs.update(extra)
    return {"id": f"urn:x:{n:03d}", "type": ["T"], "attrs": attrs}


def ids(entities: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in entities]


def order(entities: list[dict[str, Any]], text: str, **kw: Any) -> list[str]:
    return ids(order_entities(entities, parse_ordering(text, **kw)))


def test_order_by_elements() -> None:
    terms = parse_order_by("name,age;desc,location;dist-asc,address[city],name.observedAt")
    assert [t.direction for t in terms] == ["asc", "desc", "dist-asc", "asc", "asc"]
    assert terms[3].path.keys == ("city",) and terms[4].path.member == "observedAt"
    assert parse_order_by(["id;desc"])[0].member == "id"
    assert parse_order_by("name")[0].member is None


@pytest.mark.parametrize("text", ["", "name,", "name;up", "a==1", "!a", "(a)", "a;asc;desc", "a b"])
def test_bad_order_by(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_order_by(text)


def test_distance_needs_its_reference() -> None:
    with pytest.raises(BadRequestData, match="orderFrom"):
        parse_ordering("location;dist-asc")
    with pytest.raises(BadRequestData):
        parse_ordering("location;dist-asc", "[8,40", None)
    with pytest.raises(BadRequestData):
        parse_ordering("location;dist-asc", "[8,40]", "Circle")
    assert parse_ordering("location;dist-asc", "[8,40]").origin is not None


def test_datatype_order_and_directions() -> None:
    values = [True, "b", 3, {"k": 1}, [1], 1.5, "a"]
    entities = [thing(n, v) for n, v in enumerate(values)] + [thing(99)]
    assert order(entities, "v") == ids([entities[i] for i in (5, 2, 6, 1, 3, 4, 0, 7)])
    assert order(entities, "v;desc") == ids([entities[i] for i in (0, 4, 3, 1, 6, 2, 5, 7)])


def test_typed_date_times_compare_as_instants() -> None:
    stamp = {"@type": "https://uri.etsi.org/ngsi-ld/DateTime"}
    entities = [thing(0, {**stamp, "@value": "2024-01-01T10:00:00+02:00"}),
                thing(1, {**stamp, "@value": "2024-01-01T09:00:00Z"})]
    assert order(entities, "v") == ["urn:x:000", "urn:x:001"]


def test_names_resolve_but_entity_members_stay() -> None:
    ordering = resolve_ordering(parse_ordering("id,v.sub"), lambda n: "https://e/" + n)
    assert ordering.terms[0].path.names == ("id",)
    assert ordering.terms[1].path.names == ("https://e/v", "https://e/sub")


def test_multi_attribute_orders_by_its_default_instance() -> None:
    first = thing(0, v=[{"type": "Property", "value": 1, "datasetId": "urn:d"},
                        {"type": "Property", "value": 9}])
    second = thing(1, 5)
    assert order([first, second], "v") == ["urn:x:001", "urn:x:000"]


def test_distance_ranks_geo_properties_first() -> None:
    def at(n: int, lon: float) -> dict[str, Any]:
        return thing(n, loc=[{"type": "GeoProperty",
                              "value": {"type": "Point", "coordinates": [lon, 0]}}])

    entities = [at(0, 3), at(1, 1), thing(2, loc=[{"type": "Property", "value": 0}]), at(3, 2)]
    assert order(entities, "loc;dist-asc", coordinates="[0,0]") == [
        "urn:x:001", "urn:x:003", "urn:x:000", "urn:x:002"]
    assert order(entities, "loc;dist-desc", coordinates=[0, 0]) == [
        "urn:x:000", "urn:x:003", "urn:x:001", "urn:x:002"]


@pytest.mark.parametrize("tag", ["und", "und-x-icu", "de-u-co-phonebk", "en-US", "und-u-ks-identic",
                                 "zh-Hant-TW", "sr-Latn-u-kn-true"])
def test_collation_tags(tag: str) -> None:
    assert parse_collation(tag).tag == tag


@pytest.mark.parametrize("tag", ["", "!!nope", "not a tag", "en_US", "und-u-ks-level9", "a" * 200])
def test_bad_collation_tags(tag: str) -> None:
    with pytest.raises(BadRequestData):
        parse_collation(tag)


def test_collation_strengths_and_numbers() -> None:
    words = ["b", "A", "á", "a", "B"]
    root = sort_key(COLLATOR, parse_collation("und"))
    assert sorted(words, key=root) == ["a", "A", "á", "b", "B"]
    primary = sort_key(COLLATOR, parse_collation("und-u-ks-level1"))
    assert primary("a") == primary("Á")
    identic = sort_key(COLLATOR, parse_collation("und-u-ks-identic"))
    assert identic("a") != identic("A")
    numeric = sort_key(COLLATOR, parse_collation("und-u-kn-true"))
    assert sorted(["item10", "item9", "item010b"], key=numeric) == ["item9", "item10", "item010b"]


@given(st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=3), st.booleans()),
                max_size=12, unique_by=lambda v: (type(v).__name__, v)))
def test_ordering_is_a_permutation_and_desc_reverses_present_values(values: list[Any]) -> None:
    entities = [thing(n, {"@type": "X", "@value": n} if v is None else v)
                for n, v in enumerate(values)]
    entities.append(thing(len(values)))  # no attribute: last both ways
    asc = ids(order_entities(entities, parse_ordering("v")))
    desc = ids(order_entities(entities, parse_ordering("v;desc")))
    assert sorted(asc) == sorted(ids(entities))
    assert asc[-1] == desc[-1] == entities[-1]["id"]
    assert asc[:-1] == list(reversed(desc[:-1]))
