"""Entity queries in the stores: every backend answers exactly what ``matches`` selects.

The property: for random entities and random queries (q, type expressions,
ids, idPattern, attrs, scopeQ, geo-queries, datasetIds), ``query_entities``
returns the entities ``ngsi_ld.query.matches`` selects, sorted by id, paged,
with the right count, for the memory and the SQLite store.  Then the SQLite
query plans: a type + q query and a geo-query use the indexes and the R*Tree,
never a scan of the entities table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_contract import load, put

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query import (
    EntityQuery,
    matches,
    parse_geo_query,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    resolve_names,
)
from storage import MemoryStore, SqliteStore, Store
from storage.sqlite.query import compile_query

NS = "https://example.org/"
IDS = [f"urn:x:{k}{n}" for k in "AB" for n in range(4)]
ATTRS = ["a", "b", "loc"]


def expand(name: str) -> str:
    return NS + name


# -- random entities ----------------------------------------------------------------------
scalars = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([1.5, -0.5, 2.0]),
    st.sampled_from(["x", "y", "xy", "1", "on"]),
    st.booleans(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.builds(lambda v: {"@type": "Thing", "@value": v}, scalars),
    st.fixed_dictionaries({"k": scalars}),
)
points = st.tuples(st.floats(0, 2), st.floats(0, 2)).map(
    lambda p: {"type": "Point", "coordinates": [round(p[0], 3), round(p[1], 3)]}
)
squares = st.tuples(st.floats(0, 2), st.floats(0, 2)).map(
    lambda p: {
        "type": "Polygon",
        "coordinates": [
            [
                [p[0], p[1]],
                [p[0] + 0.3, p[1]],
                [p[0] + 0.3, p[1] + 0.3],
                [p[0], p[1] + 0.3],
                [p[0], p[1]],
            ]
        ],
    }
)
instances = st.one_of(
    st.builds(lambda v: {"type": "Property", "value": v}, values),
    st.builds(
        lambda v, s: {"type": "Property", "value": v, "sub": {NS + "s": {"type": "Property",
                                                                       "value": s}}},
        values,
        scalars,
    ),
    st.builds(lambda o: {"type": "Relationship", "object": o}, st.sampled_from(IDS)),
    st.builds(
        lambda v: {"type": "VocabProperty", "vocab": v}, st.sampled_from([NS + "on", NS + "x"])
    ),
    st.builds(
        lambda v: {"type": "LanguageProperty", "languageMap": {"en": v, "fr": "y"}},
        st.sampled_from(["x", "on"]),
    ),
    st.builds(lambda g: {"type": "GeoProperty", "value": g}, points | squares),
)


@st.composite
def attributes(draw: st.DrawFn) -> list[dict[str, Any]]:
    first = draw(instances)
    more = draw(st.lists(instances, max_size=2))
    out = [first]
    for n, inst in enumerate(more):
        out.append({**inst, "datasetId": f"urn:ds:{n}"})
    return out


@st.composite
def entities(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(st.sampled_from(IDS), unique=True, max_size=8))
    out = []
    for entity_id in ids:
        entity: dict[str, Any] = {
            "id": entity_id,
            "type": draw(st.lists(st.sampled_from([NS + "T", NS + "U", NS + "V"]),
                                  min_size=1, max_size=2, unique=True)),
            "attrs": draw(st.dictionaries(st.sampled_from([NS + a for a in ATTRS]),
                                          attributes(), max_size=3)),
        }
        scope = draw(st.none() | st.lists(st.sampled_from(["/a", "/a/b", "/c"]), min_size=1,
                                          max_size=2, unique=True))
        if scope is not None:
            entity["scope"] = scope
        out.append(entity)
    return out


# -- random queries -----------------------------------------------------------------------
TERMS = [
    "a==1", "a==1.5", "a>0", "a>=2", "a<1", "a<=-1", 'a=="x"', 'a=="on"', 'a>"x"', 'a<="x"',
    'a!="x"', "a!=1", 'a~="^x"', 'a!~="y"', "a==0..2", 'a==1,"x"', "a==true", "a", "!a", "b",
    "!b", "a[k]==1", "a.s==1", "b.observedAt", "a==urn:x:A1", "b==urn:x:B2", 'b=="on"',
    'b[en]=="on"', 'a=="1"', "a==-3..-1", 'a=="x".."y"',
]
q_texts = st.recursive(
    st.sampled_from(TERMS),
    lambda inner: st.lists(inner, min_size=2, max_size=3).flatmap(
        lambda parts: st.sampled_from([";".join(parts), "|".join(parts),
                                       "(" + "|".join(parts) + ")"])
    ),
    max_leaves=4,
)
GEO = [
    ("near;maxDistance==60000", "Point", [1.0, 1.0]),
    ("near;minDistance==80000", "Point", [1.0, 1.0]),
    ("within", "Polygon", [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]),
    ("intersects", "Polygon", [[[0.5, 0.5], [1.5, 0.5], [1.5, 1.5], [0.5, 1.5], [0.5, 0.5]]]),
    ("contains", "Point", [1.2, 1.2]),
    ("disjoint", "Point", [1.0, 1.0]),
]


@st.composite
def queries(draw: st.DrawFn) -> EntityQuery:
    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.none() | strategy)

    q = maybe(q_texts)
    types = maybe(st.sampled_from(["T", "U", "T|U", "T;U", "(T;U)|V", "V,U"]))
    geo = maybe(st.sampled_from(GEO))
    scope = maybe(st.sampled_from(["/a", "/a/#", "/+/b", "/c|/a/b"]))
    query = EntityQuery(
        ids=maybe(st.lists(st.sampled_from(IDS), min_size=1, max_size=4)),
        id_pattern=maybe(st.sampled_from([
            "^urn:x:A", "2$", "^urn:x:B[0-2]", "1|3", "x", "x:A", "urn:x:B.*", "x:[AB]1",
            "A(1)?", "x:B2?", "(?i)X:a", "B\\d", "[^A]2",
        ])),
        type_expr=None if types is None else parse_type_expr(types),
        attrs=maybe(st.lists(st.sampled_from(ATTRS), min_size=1, max_size=2)),
        q=None if q is None else parse_q(q),
        scope_q=None if scope is None else parse_scope_q(scope),
        geo_q=None if geo is None else parse_geo_query(geo[0], geo[1], geo[2], "loc"),
        dataset_ids=maybe(st.lists(st.sampled_from(["@none", "urn:ds:0"]), min_size=1)),
    )
    return resolve_names(query, expand, expand)


# -- the stores ---------------------------------------------------------------------------
@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store = MemoryStore() if request.param == "memory" else SqliteStore(
        tmp_path / "q.db")
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()



@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(items=entities(), query=queries(), offset=st.integers(0, 3),
       limit=st.none() | st.integers(0, 4))
async def test_store_answers_what_matches_selects(
    store: Store, items: list[dict[str, Any]], query: EntityQuery, offset: int,
    limit: int | None,
) -> None:
    tenant = await load(store, items)
    expected = sorted((e for e in items if matches(e, query)), key=lambda e: e["id"])
    everything, total = await store.query_entities(tenant, query, count=True)
    assert everything == expected
    assert total == len(expected)
    window = expected[offset:] if limit is None else expected[offset:offset + limit]
    page, no_total = await store.query_entities(tenant, query, offset=offset, limit=limit)
    assert page == window
    assert no_total is None


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first=entities(), second=entities(), query=queries())
async def test_answers_follow_every_write(
    store: Store, first: list[dict[str, Any]], second: list[dict[str, Any]],
    query: EntityQuery,
) -> None:
    """Replacing and deleting entities keeps the SQLite value and geo indexes in step."""
    tenant = await load(store, first)
    replaced = {e["id"]: e for e in second}
    await store.modify_many(
        tenant, [(e["id"], put(replaced.get(e["id"]))) for e in first]
    )
    await store.modify_many(tenant, [(e["id"], put(e)) for e in second])
    expected = sorted((e for e in second if matches(e, query)), key=lambda e: e["id"])
    found, total = await store.query_entities(tenant, query, count=True)
    assert found == expected and total == len(expected)


@pytest.mark.parametrize("page", [{"offset": -1}, {"limit": -2}, {"offset": 1.5},
                                  {"limit": True}])
async def test_negative_or_non_integer_page_is_bad_request(
    store: Store, page: dict[str, Any]
) -> None:
    with pytest.raises(BadRequestData, match=r"offset|limit"):
        await store.query_entities("", EntityQuery(), **page)


async def test_discovery_summaries(store: Store) -> None:
    tenant = await load(store, [
        {"id": "urn:x:1", "type": [NS + "T"], "attrs": {
            NS + "a": [{"type": "Property", "value": 1},
                       {"type": "Property", "value": 2, "datasetId": "urn:ds:1"}],
            NS + "b": [{"type": "Relationship", "object": "urn:x:2"}]}},
        {"id": "urn:x:2", "type": [NS + "T", NS + "U"], "attrs": {
            NS + "a": [{"type": "VocabProperty", "vocab": NS + "v"}]}},
    ])
    assert await store.type_names(tenant) == [NS + "T", NS + "U"]
    assert await store.attribute_names(tenant) == [NS + "a", NS + "b"]
    types = {s.type: s for s in await store.type_summaries(tenant)}
    assert types[NS + "T"].entity_count == 2
    assert types[NS + "T"].attributes == {NS + "a": {"Property", "VocabProperty"},
                                          NS + "b": {"Relationship"}}
    assert types[NS + "U"].attributes == {NS + "a": {"VocabProperty"}}
    (only_u,) = await store.type_summaries(tenant, [NS + "U"])
    assert only_u.type == NS + "U" and only_u.entity_count == 1
    attrs = {s.name: s for s in await store.attribute_summaries(tenant)}
    assert attrs[NS + "a"].instance_count == 3
    assert attrs[NS + "a"].type_names == {NS + "T", NS + "U"}
    assert attrs[NS + "b"].kinds == {"Relationship"}
    assert await store.attribute_summaries(tenant, [NS + "zzz"]) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mine=entities(), theirs=entities())
async def test_type_and_attribute_names_are_those_of_the_tenant(
    store: Store, mine: list[dict[str, Any]], theirs: list[dict[str, Any]]
) -> None:
    tenant, other = await load(store, mine), await load(store, theirs)
    for name, items in ((tenant, mine), (other, theirs)):
        assert await store.type_names(name) == sorted({t for e in items for t in e["type"]})
        assert await store.attribute_names(name) == sorted({a for e in items for a in e["attrs"]})


# -- SQLite query plans -------------------------------------------------------------------
async def _plan(store: SqliteStore, tenant: str, query: EntityQuery) -> list[str]:
    plan = compile_query(tenant, query)
    rows = await store._read(
        lambda conn: conn.execute("EXPLAIN QUERY PLAN " + plan.sql, plan.params).fetchall()
    )
    return [row[-1] for row in rows]


async def test_sqlite_plans_use_the_indexes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "plan.db")
    await store.open()
    try:
        items: list[dict[str, Any]] = [
            {"id": f"urn:x:{n:05d}", "type": [NS + ("T" if n % 3 else "U")], "attrs": {
                NS + "a": [{"type": "Property", "value": n % 7}],
                NS + "s": [{"type": "Property", "value": "on" if n % 2 else "off"}],
                NS + "loc": [{"type": "GeoProperty", "value": {
                    "type": "Point", "coordinates": [n % 100 / 50, n // 100 / 50]}}]}}
            for n in range(3000)
        ]
        tenant = await load(store, items)
        await store._write(lambda conn: conn.execute("ANALYZE"))
        type_q = resolve_names(EntityQuery(type_expr=parse_type_expr("T"),
                                           q=parse_q('s=="on";a>=3')), expand)
        near = resolve_names(EntityQuery(
            type_expr=parse_type_expr("T"),
            geo_q=parse_geo_query("near;maxDistance==5000", "Point", [1.0, 0.5], "loc")), expand)
        q_only = resolve_names(EntityQuery(q=parse_q("a>=5;s==\"off\"")), expand)
        for query in (type_q, near, q_only):
            details = await _plan(store, tenant, query)
            # scans only of the R*Tree and of the geo query's ranges of cells (a few rows)
            assert not any(d.startswith("SCAN") and "r VIRTUAL" not in d and d != "SCAN c"
                           and "CONSTANT ROWS" not in d for d in details), details
            expected = sorted((e for e in items if matches(e, query)), key=lambda e: e["id"])
            found, total = await store.query_entities(tenant, query, limit=20, count=True)
            assert expected and found == expected[:20] and total == len(expected)
        near_plan = await _plan(store, tenant, near)
        assert any("VIRTUAL TABLE" in d for d in near_plan)
        # the Points: seeks of their cells in the value index (sqlite_geocells)
        assert any("attr_values_value (attr=? AND val>? AND val<?)" in d for d in near_plan)
        # type + q and q alone: the index ranges of the type and the terms, merged
        for query in (type_q, q_only):
            assert "MERGE (INTERSECT)" in await _plan(store, tenant, query)
    finally:
        await store.close()


async def test_data_version_changes_with_every_write(store: Store) -> None:
    tenant = await load(store, [{"id": "urn:x:1", "type": [NS + "T"], "attrs": {}}])
    first = store.data_version(tenant)
    assert first is not None and store.data_version(tenant) == first
    await store.modify(tenant, "urn:x:1", lambda e: {**e, "type": [NS + "U"]} if e else None)
    second = store.data_version(tenant)
    assert second != first
    await store.modify(tenant, "urn:x:1", lambda e: None)
    assert store.data_version(tenant) not in (first, second)


async def test_file_of_an_older_schema_gets_its_indexes_built(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    await store.open()
    point = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1.0, 1.0]}}
    tenant = await load(store, [{"id": "urn:x:1", "type": [NS + "T"], "attrs": {
        NS + "a": [{"type": "Property", "value": 5}], NS + "loc": [point]}}])
    await store.close()
    with sqlite3.connect(path) as conn:  # what version 1 of the schema left behind
        conn.execute("DROP TABLE attr_values")
        conn.execute("DELETE FROM geo_rtree")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        query = resolve_names(EntityQuery(
            q=parse_q("a==5"),
            geo_q=parse_geo_query("near;maxDistance==10", "Point", [1.0, 1.0], "loc")), expand)
        found, total = await reopened.query_entities(tenant, query, count=True)
        assert [e["id"] for e in found] == ["urn:x:1"] and total == 1
    finally:
        await reopened.close()
