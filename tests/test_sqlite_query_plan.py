"""SQLite merge plans: type names and simple q terms ANDed, read as sorted id streams.

The property: whichever streams are merged and which are looked up (the choice
follows the estimated stream sizes), the SQLite store answers what
``ngsi_ld.query.matches`` selects, paged and counted.  Then the plan itself: a
type + q query merges index ranges (INTERSECT), never scans the entities table,
and a stream much longer than the others becomes a lookup.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_contract import load

from ngsi_ld.query import EntityQuery, matches, parse_q, parse_type_expr, resolve_names
from storage import SqliteStore
from storage.sqlite import execute as sqlite_exec
from storage.sqlite.index import Stream
from storage.sqlite.query import compile_query

NS = "https://example.org/"


def expand(name: str) -> str:
    return NS + name


def entity(n: int, types: list[str], attrs: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"urn:x:{n:03d}", "type": [NS + t for t in types],
            "attrs": {NS + k: v for k, v in attrs.items()}}


numbers = st.one_of(st.integers(-2, 4), st.lists(st.integers(-2, 4), min_size=1, max_size=3))
words = st.one_of(st.sampled_from(["on", "off"]), st.lists(st.sampled_from(["on", "off"]),
                                                           min_size=1, max_size=2))


@st.composite
def entities(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(0, 12))
    out = []
    for n in draw(st.lists(st.integers(0, 40), min_size=count, max_size=count, unique=True)):
        attrs: dict[str, Any] = {}
        if draw(st.booleans()):
            attrs["a"] = [{"type": "Property", "value": draw(numbers)}]
        if draw(st.booleans()):
            attrs["s"] = [draw(st.sampled_from([
                {"type": "Property", "value": draw(words)},
                {"type": "VocabProperty", "vocab": NS + "on"},
            ]))]
        if draw(st.booleans()):
            attrs["b"] = [{"type": "Relationship", "object": "urn:x:b"}]
        types = draw(st.lists(st.sampled_from(["T", "U"]), min_size=1, max_size=2, unique=True))
        out.append(entity(n, types, attrs))
    return out


TERMS = ["a>=1", "a<2", "a==3", "a==0..2", "a==1,4", 's=="on"', "s>\"o\"", "b", "!b", "a"]
queries = st.builds(
    lambda types, terms: resolve_names(EntityQuery(
        type_expr=None if types is None else parse_type_expr(types),
        q=parse_q(";".join(terms))), expand, expand),
    st.sampled_from([None, "T", "U", "T;U"]),
    st.lists(st.sampled_from(TERMS), min_size=1, max_size=3),
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    backend = SqliteStore(tmp_path / "plan.db")
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()



@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(items=entities(), query=queries, sizes=st.dictionaries(
    st.sampled_from([NS + n for n in ("T", "U", "a", "s", "b")]), st.integers(0, 100)),
    offset=st.integers(0, 3), limit=st.none() | st.integers(1, 4))
async def test_every_choice_of_streams_answers_what_matches_selects(
    store: SqliteStore, items: list[dict[str, Any]], query: EntityQuery,
    sizes: dict[str, int], offset: int, limit: int | None,
) -> None:
    tenant = await load(store, items)
    expected = sorted((e for e in items if matches(e, query)), key=lambda e: e["id"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_exec, "stream_size",
                      lambda conn, tenant, stream: sizes.get(stream.key, 10))
        found, total = await store.query_entities(
            tenant, query, offset=offset, limit=limit, count=True)
    stop = None if limit is None else offset + limit
    assert found == expected[offset:stop]
    assert total == len(expected)


async def _details(store: SqliteStore, sql: str, params: list[Any]) -> list[str]:
    rows = await store._read(
        lambda conn: conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    return [row[-1] for row in rows]


async def test_type_and_q_terms_merge_index_ranges(store: SqliteStore) -> None:
    items = [entity(n, ["T" if n % 3 else "U"], {
        "a": [{"type": "Property", "value": n % 7}],
        "s": [{"type": "Property", "value": "on" if n % 2 else "off"}]}) for n in range(300)]
    tenant = await load(store, items)
    query = resolve_names(EntityQuery(type_expr=parse_type_expr("T"),
                                      q=parse_q('s=="on";a>=3')), expand, expand)
    plan = compile_query(tenant, query)
    assert plan.page_sql is not None
    details = await _details(store, plan.page_sql, [*plan.params, 20, 5])
    assert "MERGE (INTERSECT)" in details
    assert not any(d.startswith("SCAN") for d in details), details
    expected = sorted((e for e in items if matches(e, query)), key=lambda e: e["id"])
    for offset in (0, 20, len(expected) - 3):
        found, total = await store.query_entities(tenant, query, offset=offset, limit=20,
                                                  count=True)
        assert found == expected[offset:offset + 20] and total == len(expected)


async def test_a_string_equality_reads_only_its_values_unless_a_vocab_expands_to_it(
    store: SqliteStore,
) -> None:
    items = [entity(n, ["T"], {
        "a": [{"type": "Property", "value": n % 7}],
        "s": [{"type": "Property", "value": "on" if n % 2 else "off"}]}) for n in range(200)]
    tenant = await load(store, items)
    query = resolve_names(EntityQuery(type_expr=parse_type_expr("T"),
                                      q=parse_q('s=="on";a>=3')), expand, expand)
    for used in (False, True):
        plan = compile_query(tenant, query, vocab_used=lambda attr, iri, used=used: used)
        assert plan.page_sql is not None
        details = await _details(store, plan.page_sql, [*plan.params, 20, 0])
        by_value = any("attr_values_value (attr=? AND val=?)" in d
                       for d in details)
        assert by_value is not used, details
    # a VocabProperty whose value expands to "on" is found by s=="on" (4.9) too
    vocab = entity(500, ["T"], {"a": [{"type": "Property", "value": 5}],
                                "s": [{"type": "VocabProperty", "vocab": NS + "on"}]})
    for stored in (items, [*items, vocab]):
        tenant = await load(store, stored)
        expected = sorted((e for e in stored if matches(e, query)), key=lambda e: e["id"])
        found, total = await store.query_entities(tenant, query, offset=40, limit=30,
                                                  count=True)
        assert found == expected[40:70] and total == len(expected)
    assert vocab in expected


async def test_a_much_longer_stream_is_looked_up(store: SqliteStore) -> None:
    query = resolve_names(EntityQuery(type_expr=parse_type_expr("T"), q=parse_q("a>=3")),
                          expand)
    sizes = {NS + "T": 10, NS + "a": 10_000}

    def size(stream: Stream) -> int:
        return sizes[stream.key]

    plan = compile_query("t", query, size)
    assert plan.page_sql is not None
    details = await _details(store, plan.page_sql, [*plan.params, 20, 0])
    assert "MERGE (INTERSECT)" not in details
    assert any(d.startswith("SEARCH d USING PRIMARY KEY (type=?)")
               for d in details), details
    assert any("CORRELATED" in d for d in details), details
    sizes[NS + "a"] = 20
    details = await _details(store, *(lambda p: (p.page_sql or "", [*p.params, 20, 0]))(
        compile_query("t", query, size)))
    assert "MERGE (INTERSECT)" in details


async def test_several_matching_values_count_once(store: SqliteStore) -> None:
    items = [entity(n, ["T"], {"a": [{"type": "Property", "value": [1, 2, 3]}]})
             for n in range(5)]
    tenant = await load(store, items)
    query = resolve_names(EntityQuery(q=parse_q("a>=1")), expand)
    found, total = await store.query_entities(tenant, query, offset=1, limit=3, count=True)
    assert [e["id"] for e in found] == [e["id"] for e in items[1:4]] and total == 5


async def test_an_unanchored_id_pattern_matches_ids_then_reads_the_page(
    store: SqliteStore,
) -> None:
    items = [entity(n, ["T"], {"a": [{"type": "Property", "value": n}]}) for n in range(200)]
    tenant = await load(store, items)
    query = EntityQuery(id_pattern="x:1.5")  # search semantics: not a key range
    plan = compile_query(tenant, query)
    assert plan.keys_sql is not None and "instr(" in plan.sql
    read: list[list[str]] = []
    original = sqlite_exec.read_docs
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_exec, "read_docs",
                      lambda conn, t, ids: read.append(list(ids)) or original(conn, t, ids))
        found, total = await store.query_entities(tenant, query, offset=2, limit=3, count=True)
    expected = [e for e in items if re.search("x:1.5", e["id"])]
    assert [e["id"] for e in found] == [e["id"] for e in expected[2:5]] and found == expected[2:5]
    assert total == len(expected) == 10
    assert read == [[e["id"] for e in expected[2:5]]]  # only the page's documents


async def test_an_exact_count_reads_the_driving_index_only(store: SqliteStore) -> None:
    items = [entity(n, ["T" if n % 2 else "U"], {"a": [{"type": "Property", "value": n}]})
             for n in range(60)]
    tenant = await load(store, items)
    for query in (EntityQuery(type_expr=parse_type_expr(NS + "T")),
                  EntityQuery(attrs=[NS + "a"]), EntityQuery(type_expr=parse_type_expr(NS + "U"),
                                                             attrs=[NS + "a"])):
        plan = compile_query(tenant, query)
        assert plan.count_sql is not None and "entities e" not in plan.count_sql
        details = await _details(store, plan.count_sql, plan.params)
        assert not any("entities" in d for d in details), details
        expected = [e for e in items if matches(e, query)]
        found, total = await store.query_entities(tenant, query, offset=5, limit=3, count=True)
        assert total == len(expected) and found == expected[5:8]


@pytest.mark.parametrize("q", [
    ";".join(["a==1"] * 600),
    ";".join(f"a>={n % 2}" for n in range(600)),
    "|".join(f"a=={n}" for n in range(600)),
    ";".join(['(a==1|s=="on")'] * 300),
    ";".join(["!b"] * 600),
])
async def test_a_query_of_hundreds_of_terms_answers_what_matches_selects(
    store: SqliteStore, q: str
) -> None:
    """SQLite refuses compound SELECTs of 500 arms and expressions 1000 deep."""
    items = [entity(n, ["T"], {"a": [{"type": "Property", "value": n % 3}],
                               "s": [{"type": "Property", "value": "on" if n % 2 else "off"}]})
             for n in range(30)]
    tenant = await load(store, items)
    for query in (EntityQuery(type_expr=parse_type_expr("T"), q=parse_q(q)),
                  EntityQuery(q=parse_q(q), attrs=[f"x{n}" for n in range(600)] + ["a"])):
        query = resolve_names(query, expand, expand)
        expected = [e for e in items if matches(e, query)]
        assert len(expected) >= 10
        found, total = await store.query_entities(tenant, query, offset=1, limit=5, count=True)
        assert total == len(expected) and found == expected[1:6]


async def test_a_prefix_pattern_is_a_key_range_counted_in_sql(store: SqliteStore) -> None:
    items = [entity(n, ["T"], {}) for n in range(40)]
    tenant = await load(store, items)
    query = EntityQuery(id_pattern="^urn:x:01.*")
    plan = compile_query(tenant, query)
    assert plan.id_pattern is None and plan.count_sql is not None
    found, total = await store.query_entities(tenant, query, offset=2, limit=3, count=True)
    expected = [e for e in items if e["id"].startswith("urn:x:01")]
    assert total == len(expected) == 10 and found == expected[2:5]


async def test_a_type_every_holder_of_the_attribute_has_is_not_merged(
    store: SqliteStore,
) -> None:
    """While only entities of type T have ``a`` (the discovery counters say so), a
    count of ``type=T&q=a==1`` reads the value index alone; once an entity of
    another type has ``a``, the type is checked again."""
    items = [entity(n, ["T"], {"a": [{"type": "Property", "value": n % 2}]}) for n in range(20)]
    tenant = await load(store, items)
    query = resolve_names(EntityQuery(type_expr=parse_type_expr("T"), q=parse_q("a==1")),
                          expand, expand)
    stats_reads: list[tuple[str, str]] = []
    real = sqlite_exec.implied

    def spy(conn: Any, tenant: str, type_name: str, attr: str) -> bool:
        stats_reads.append((type_name, attr))
        return real(conn, tenant, type_name, attr)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_exec, "implied", spy)
        assert (await store.query_entities(tenant, query, limit=0, count=True))[1] == 10
    assert stats_reads == [(NS + "T", NS + "a")]
    plan = compile_query(tenant, query, implied=lambda t, a: True)
    assert plan.count_sql is not None and "entity_types" not in plan.count_sql
    other = entity(99, ["U"], {"a": [{"type": "Property", "value": 1}]})
    await store.modify(tenant, other["id"], lambda current: other)
    assert (await store.query_entities(tenant, query, limit=0, count=True))[1] == 10
    both = entity(98, ["T", "U"], {"a": [{"type": "Property", "value": 1}]})
    await store.modify(tenant, both["id"], lambda current: both)
    assert (await store.query_entities(tenant, query, limit=0, count=True))[1] == 11
    await store.modify(tenant, other["id"], lambda current: None)
    found, total = await store.query_entities(tenant, query, count=True)
    assert total == 11 and [e["id"] for e in found][-1] == both["id"]


async def test_one_q_text_under_two_contexts_finds_each_contexts_vocabulary(
    store: SqliteStore,
) -> None:
    # Two requests with the same q but @contexts that expand "on" differently: the
    # second must not be answered with the plan of the first (AST equality ignores
    # the expansion of a string).
    other = "https://other.example/"
    items = [entity(n, ["T"], {"s": [{"type": "VocabProperty", "vocab": ns + "on"}]})
             for n, ns in enumerate((NS, other))]
    tenant = await load(store, items)
    for ns, wanted in ((NS, items[0]), (other, items[1])):
        query = resolve_names(EntityQuery(type_expr=parse_type_expr("T"),
                                          q=parse_q('s=="on"')),
                              expand, lambda term, ns=ns: ns + term)
        found, total = await store.query_entities(tenant, query, offset=0, limit=10,
                                                  count=True)
        assert found == [wanted] and total == 1
