"""In-memory evaluation of q and of whole entity queries on the internal form."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData, TooComplexQuery
from ngsi_ld.query import (
    EntityQuery,
    match_q,
    matches,
    parse_geo_query,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    resolve_names,
)

EX = "https://example.org/"


def expand(name: str) -> str:
    return name if ":" in name else EX + name


def q(text: str) -> Any:
    return resolve_names(parse_q(text), expand)


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


ENTITY: dict[str, Any] = {
    "id": "urn:ngsi-ld:Car:1",
    "type": [EX + "Car", EX + "Vehicle"],
    "scope": ["/Madrid/Centro"],
    "attrs": {
        EX + "speed": [
            prop(80, observedAt="2024-05-01T10:00:00.000Z", unitCode="KMH"),
            prop(30, datasetId="urn:ngsi-ld:Dataset:gps"),
        ],
        EX + "brand": [prop("Mercedes Benz")],
        EX + "electric": [prop(False)],
        EX + "colors": [prop(["red", "blue"])],
        EX + "address": [prop({"city": "Berlin", "street": {"name": "Unter den Linden"}})],
        EX + "built": [prop({"@type": "DateTime", "@value": "2019-03-01T00:00:00Z"})],
        EX + "owner": [
            {
                "type": "Relationship",
                "object": "urn:ngsi-ld:Person:Bob",
                "sub": {EX + "since": prop(2020, sub={EX + "verified": prop(True)})},
            }
        ],
        EX + "name": [{"type": "LanguageProperty", "languageMap": {"en": "car", "de": "Auto"}}],
        EX + "category": [{"type": "VocabProperty", "vocab": EX + "vocab/commercial"}],
        EX + "raw": [{"type": "JsonProperty", "json": {"a": {"b": 7}}}],
        EX + "readings": [{"type": "ListProperty", "valueList": [1, 5, 9]}],
        EX + "friends": [
            {"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Car:2", "urn:ngsi-ld:Car:3"]}
        ],
        EX + "location": [
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-3.70, 40.42]}}
        ],
    },
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("speed==80", True),
        ("speed==81", False),
        ("speed>79", True),
        ("speed>80", False),
        ("speed>=80", True),
        ("speed<31", True),
        ("speed<30", False),
        ("speed<=30", True),
        ("speed!=80", True),  # the gps instance is 30
        ("speed==29..31", True),
        ("speed==31..79", False),
        ("speed!=29..100", False),
        ("speed==1,2,30", True),
        ("speed!=80,30", False),
        ('speed=="80"', False),  # a string never equals a number
        ('speed>"a"', False),
        ('brand=="Mercedes Benz"', True),
        ('brand>"Audi"', True),
        ("brand!=1", True),  # different types are unequal
        ("brand~=Merc", True),
        ("brand~=(?i)^mercedes", True),
        ("brand~=^Benz", False),
        ("brand!~=BMW", True),
        ("brand!~=Benz", False),
        ("speed~=8", False),  # patterns only match strings
        ("electric==false", True),
        ("electric==true", False),
        ('colors=="red"', True),
        ('colors=="green"', False),
        ('colors!="green"', True),
        ('colors!="red"', False),
        ('address[city]=="Berlin"', True),
        ('address[street.name]=="Unter den Linden"', True),
        ('address[street][name]~="Linden$"', True),
        ("address[zip]", False),
        ("address[city]", True),
        ("built>2019-01-01T00:00:00Z", True),
        ("built<2019-03-01T01:00:00+01:00", False),
        ("built==2019-03-01T01:00:00+01:00", True),
        ("speed.observedAt>=2024-05-01T10:00:00Z", True),
        ("speed.observedAt>2024-05-01T10:00:00Z", False),
        ('speed.unitCode=="KMH"', True),
        ("speed.datasetId==urn:ngsi-ld:Dataset:gps", True),
        ('owner=="urn:ngsi-ld:Person:Bob"', True),
        ("owner==urn:ngsi-ld:Person:Bob", True),
        ("owner==urn:ngsi-ld:Person:Alice", False),
        ("owner.since==2020", True),
        ("owner.since.verified==true", True),
        ("owner.missing", False),
        ('name=="Auto"', True),
        ('name=="car"', True),
        ('name[de]=="Auto"', True),
        ('name[en]=="Auto"', False),
        ('name!="bike"', True),
        ('category=="https://example.org/vocab/commercial"', True),
        ("raw[a.b]==7", True),
        ("readings>8", True),
        ("readings==6", False),
        ("friends==urn:ngsi-ld:Car:3", True),
        ('location[type]=="Point"', True),
        ("speed", True),
        ("!speed", False),
        ("!missing", True),
        ("missing!=1", False),  # a term on a missing attribute is false
        ("missing", False),
        ("speed==80;brand~=Benz", True),
        ("speed==1;brand~=Benz", False),
        ("speed==1|brand~=Benz", True),
        ("(speed==1|electric==false);!missing", True),
    ],
)
def test_q_terms(text: str, expected: bool) -> None:
    assert match_q(q(text), ENTITY) is expected


def test_vocab_values_match_through_their_expansion() -> None:
    expr = resolve_names(parse_q('category=="commercial"'), expand, lambda t: EX + "vocab/" + t)
    assert match_q(expr, ENTITY)
    assert not match_q(q('category=="commercial"'), ENTITY)


def test_dataset_filter_restricts_instances() -> None:
    assert match_q(q("speed==30"), ENTITY)
    assert not match_q(q("speed==30"), ENTITY, dataset_ids=["@none"])
    assert match_q(q("speed==30"), ENTITY, dataset_ids=["urn:ngsi-ld:Dataset:gps"])
    assert not match_q(q("brand"), ENTITY, dataset_ids=["urn:ngsi-ld:Dataset:gps"])


def test_catastrophic_regex_is_refused_not_hung() -> None:
    entity = {"id": "urn:x:1", "type": [EX + "T"], "attrs": {EX + "s": [prop("a" * 40 + "!")]}}
    assert not match_q(q("s~=(a|aa)+$"), entity)  # RE2: linear, no time-out needed
    with pytest.raises(TooComplexQuery):  # a look-ahead: the backtracking fallback
        match_q(q("s~=(?=a)(a|aa)+$"), entity)


def test_entity_query_selectors() -> None:
    def select(**selectors: Any) -> bool:
        return matches(ENTITY, resolve_names(EntityQuery(**selectors), expand))

    assert select(ids=["urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:9"])
    assert not select(ids=["urn:ngsi-ld:Car:9"])
    assert select(id_pattern="^urn:ngsi-ld:Car:")
    assert not select(id_pattern="Bus")
    assert select(type_expr=parse_type_expr("Bus,Car"))
    assert select(type_expr=parse_type_expr("Car;Vehicle"))
    assert not select(type_expr=parse_type_expr("Car;Bus"))
    assert select(attrs=["missing", "brand"])
    assert not select(attrs=["missing"])
    assert select(attrs=["speed"], dataset_ids=["urn:ngsi-ld:Dataset:gps"])
    # 4.5.5: the datasetIds choose the view; the entity has brand all the same
    assert select(attrs=["brand"], dataset_ids=["urn:ngsi-ld:Dataset:gps"])
    assert select(q=parse_q("speed>50"))
    assert select(scope_q=parse_scope_q("/Madrid/#"))
    assert not select(scope_q=parse_scope_q("/Paris"))
    assert select(geo_q=parse_geo_query("near;maxDistance==2000", "Point", "[-3.71, 40.42]"))
    assert not select(geo_q=parse_geo_query("near;maxDistance==500", "Point", "[-3.71, 40.42]"))
    assert select(ids=["urn:ngsi-ld:Car:1"], q=parse_q("speed>50"), lang="en")
    assert not select(ids=["urn:ngsi-ld:Car:1"], q=parse_q("speed>500"))
    assert EntityQuery(q=parse_q("a")).has_selector
    assert not EntityQuery(lang="en").has_selector


def test_required_selectors() -> None:
    # Table 6.4.3.2-1 and 5.7.2.4: type, attrs, q or a geo-query, not on system names only
    assert EntityQuery(type_expr=parse_type_expr("T")).has_required_selector
    assert EntityQuery(attrs=["createdAt", "name"]).has_required_selector
    assert EntityQuery(q=parse_q('modifiedAt>"2020"|speed>1')).has_required_selector
    assert not EntityQuery(attrs=["createdAt"]).has_required_selector
    assert not EntityQuery(q=parse_q('modifiedAt>"2020";createdAt')).has_required_selector
    assert not EntityQuery(ids=["urn:a"], id_pattern="a", scope_q=parse_scope_q("/a"),
                           ).has_required_selector


@pytest.mark.parametrize(
    "selectors",
    [{"id_pattern": "(unclosed"}, {"ids": []}, {"attrs": [""]}, {"dataset_ids": [3]}],
)
def test_bad_selectors_are_bad_request_data(selectors: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        EntityQuery(**selectors)


def test_malformed_entities_never_raise() -> None:
    expr = q("a>1;a.b[c]==2|!a.observedAt|a~=x")
    for entity in (
        {},
        {"attrs": None},
        {"attrs": {EX + "a": None}},
        {"attrs": {EX + "a": [1, "x"]}},
        {"attrs": {EX + "a": [{"type": "Property"}]}},
        {"attrs": {EX + "a": [{"type": "LanguageProperty", "languageMap": 3}]}},
        {"attrs": {EX + "a": [{"type": "Property", "value": 1, "sub": []}]}},
    ):
        assert match_q(expr, entity) in (True, False)


# -- reference model -----------------------------------------------------------------------

_values = st.one_of(
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.booleans(),
    st.sampled_from(["a", "b", "5"]),
    st.lists(st.integers(-5, 5), max_size=3),
    st.integers(-5, 5).map(lambda n: {"@type": EX + "Int", "@value": n}),
)
_instances = st.lists(
    st.tuples(_values, st.sampled_from([None, "urn:ds:1", "urn:ds:2"])), max_size=3
).map(lambda items: list({ds: v for v, ds in items}.items()))


def _entity(instances: list[tuple[str | None, Any]]) -> dict[str, Any]:
    attrs = []
    for dataset, value in instances:
        attrs.append(prop(value) if dataset is None else prop(value, datasetId=dataset))
    return {"id": "urn:x:1", "type": [EX + "T"], "attrs": {EX + "p": attrs} if attrs else {}}


def _numbers(value: Any) -> list[float]:
    items = value if isinstance(value, list) else [value]
    items = [i["@value"] if isinstance(i, dict) else i for i in items]
    return [i for i in items if isinstance(i, int | float) and not isinstance(i, bool)]


@settings(max_examples=300)
@given(_instances, st.integers(-6, 6), st.sampled_from([None, ["@none"], ["urn:ds:1"]]))
def test_comparisons_agree_with_a_direct_computation(
    instances: list[tuple[str | None, Any]], n: int, datasets: list[str] | None
) -> None:
    entity = _entity(instances)
    kept = [
        value
        for dataset, value in instances
        if datasets is None or (dataset or "@none") in datasets
    ]
    numbers = [_numbers(value) for value in kept]
    assert match_q(q(f"p>{n}"), entity, datasets) is any(x > n for xs in numbers for x in xs)
    assert match_q(q(f"p<={n}"), entity, datasets) is any(x <= n for xs in numbers for x in xs)
    assert match_q(q(f"p=={n}"), entity, datasets) is any(x == n for xs in numbers for x in xs)
    expected_ne = any(
        not any(x == n for x in _numbers(value))
        for value in kept
        if not (isinstance(value, list) and not value)
    )
    assert match_q(q(f"p!={n}"), entity, datasets) is expected_ne
    assert match_q(q("p"), entity, datasets) is bool(kept)
    assert match_q(q("!p"), entity, datasets) is not kept
