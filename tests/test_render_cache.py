"""The render cache, the fused compact+render pass and the HTTP answers built from bytes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.app import BROKER, create_app
from broker.config import Settings
from broker.routes.entities import HOT
from broker.service.caches import RenderCache, join_array, with_context
from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld import compile_context, core_context_url
from ngsi_ld.representation import DuplicateName, render_entity
from storage import SqliteStore

EX = "https://example.org/"
USER = {"ex": EX, "speed": "ex:speed", "Car": "ex:Car", "brand": "http://schema.org/brand",
        "Celsius": "ex:Celsius", "twin": "ex:speed"}
CTX = compile_context(USER, {}, core_context_url("1.8"))


# -- RenderCache ---------------------------------------------------------------------
def test_cache_returns_what_was_put_and_counts() -> None:
    cache = RenderCache(max_bytes=10_000)
    cache.put(("t", "a", 1), b'{"id":"a"}')
    assert cache.get(("t", "a", 1)) == b'{"id":"a"}'
    assert cache.get(("t", "a", 2)) is None
    assert (cache.hits, cache.misses) == (1, 1)
    assert ("t", "a", 1) in cache and len(cache) == 1


def test_cache_stays_within_its_byte_budget_dropping_the_least_recently_used() -> None:
    body = b"x" * 800
    cache = RenderCache(max_bytes=3 * 1000)
    for n in range(3):
        cache.put(n, body)
    cache.get(0)  # 0 is now more recent than 1
    cache.put(3, body)
    assert 1 not in cache
    assert all(k in cache for k in (0, 2, 3))
    assert cache.size <= cache.max_bytes


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 3000)), max_size=60))
def test_cache_size_is_the_sum_of_what_it_holds(puts: list[tuple[int, int]]) -> None:
    cache = RenderCache(max_bytes=8000)
    for key, size in puts:
        cache.put(key, b"y" * size)
        assert cache.size <= cache.max_bytes
    held = [cache.get(k) for k in range(21)]
    assert cache.size == sum(len(b) + 200 for b in held if b is not None)


@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 900)), max_size=30),
       st.lists(st.lists(st.integers(0, 14), max_size=6), max_size=8))
def test_a_page_asked_at_once_is_each_key_asked_in_turn(
    puts: list[tuple[int, int]], pages: list[list[int]],
) -> None:
    # the same answers, counts and recency (what is dropped next) as get() key by key
    one, each = RenderCache(max_bytes=4000), RenderCache(max_bytes=4000)
    for key, size in puts:
        one.put(key, b"y" * size)
        each.put(key, b"y" * size)
    for page in pages:
        assert one.get_many(list(page)) == [each.get(k) for k in page]
        one.put(100, b"z" * 700)  # pushes out the least recently used
        each.put(100, b"z" * 700)
        assert [k in one for k in range(15)] == [k in each for k in range(15)]
    assert (one.hits, one.misses) == (each.hits, each.misses)


def test_items_larger_than_the_budget_are_not_kept() -> None:
    cache = RenderCache(max_bytes=1000)
    cache.put("big", b"z" * 5000)
    assert cache.get("big") is None and cache.size == 0


@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers(-99, 99), max_size=3), max_size=4),
       st.sampled_from(["https://c/1", ["https://c/1", {"a": "x:a"}]]))
def test_byte_assembly_equals_encoding_the_whole(items: list[dict[str, Any]], ctx: Any) -> None:
    parts = [orjson.dumps(i) for i in items]
    assert join_array(parts) == orjson.dumps(items)
    encoded = orjson.dumps(ctx)
    assert [orjson.loads(with_context(encoded, p)) for p in parts] == [
        {"@context": ctx, **i} for i in items
    ]


# -- fused compact + render ----------------------------------------------------------
iris = st.sampled_from([EX + "speed", EX + "Car", "http://schema.org/brand", EX + "other",
                        "https://uri.etsi.org/ngsi-ld/default-context/temp", "urn:x:y"])
plain = st.one_of(st.integers(-999, 999), st.text(max_size=4), st.none(),
                  st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), max_size=2))


def _instance(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    main = st.one_of(
        st.builds(lambda v: {"type": "Property", "value": v}, plain),
        st.builds(lambda t: {"type": "Property", "value": {"@type": t, "@value": "2020"}},
                  iris | st.lists(iris, min_size=1, max_size=2)),
        st.builds(lambda o, t: {"type": "Relationship", "object": o, **t},
                  st.just("urn:a:b"), st.sampled_from([{}]) | st.builds(
                      lambda t: {"objectType": t}, iris | st.lists(iris, max_size=2))),
        st.builds(lambda v: {"type": "VocabProperty", "vocab": v},
                  iris | st.lists(iris, min_size=1, max_size=2)),
        st.builds(lambda m: {"type": "LanguageProperty", "languageMap": m},
                  st.dictionaries(st.sampled_from(["en", "fr", "@none"]), st.text(max_size=3),
                                  min_size=1)),
        st.builds(lambda v: {"type": "ListRelationship", "objectList": v},
                  st.lists(st.just("urn:a:b"), max_size=2)),
        st.builds(lambda v: {"type": "GeoProperty", "value": v},
                  st.just({"type": "Point", "coordinates": [1.0, 2.0]})),
    )
    stamps = st.fixed_dictionaries({}, optional={
        "createdAt": st.just("2020-01-01T00:00:00.000Z"), "observedAt": st.just("2021"),
        "unitCode": st.just("CEL")})
    base = st.builds(lambda m, s: {**m, **s}, main, stamps)
    if depth == 0:
        return base
    return st.builds(lambda i, s: {**i, "sub": s} if s else i, base,
                     st.dictionaries(iris, _instance(depth - 1), max_size=2))


attribute = st.lists(_instance(1), min_size=0, max_size=2).map(
    lambda insts: [{**i, "datasetId": f"urn:d:{n}"} if n else i for n, i in enumerate(insts)]
)
expanded_entities = st.builds(
    lambda types, attrs: {"id": "urn:e:1", "type": types, "createdAt": "2020", "attrs": attrs},
    st.lists(iris, min_size=1, max_size=2, unique=True),
    st.dictionaries(iris, attribute, max_size=4),
)


@settings(max_examples=300)
@given(expanded_entities, st.sampled_from(["normalized", "concise", "keyValues"]),
       st.booleans(), st.sampled_from([None, "fr", "*"]))
def test_fused_render_equals_compacting_then_rendering(
    entity: dict[str, Any], fmt: Any, sys_attrs: bool, lang: str | None
) -> None:
    kept = copy.deepcopy(entity)
    try:
        two_step = render_entity(CTX.compact_entity(entity), fmt=fmt, sys_attrs=sys_attrs,
                                 lang=lang)
    except BadRequestData:
        with pytest.raises(DuplicateName):
            render_entity(entity, fmt=fmt, sys_attrs=sys_attrs, lang=lang,
                          compact=CTX.compact_iri)
        return
    fused = render_entity(entity, fmt=fmt, sys_attrs=sys_attrs, lang=lang,
                          compact=CTX.compact_iri)
    assert orjson.dumps(fused) == orjson.dumps(two_step)  # same members in the same order
    assert entity == kept  # the stored form is not touched


# -- over HTTP: cached answers follow every write --------------------------------------
@pytest.fixture
async def client(tmp_path: Path) -> Any:
    store = SqliteStore(tmp_path / "b.db")
    app = create_app(Settings(), store=store)
    async with TestClient(TestServer(app)) as c:
        yield c


E = "/ngsi-ld/v1/entities"


async def test_a_write_is_seen_by_the_next_read_and_query(client: TestClient) -> None:
    body = {"id": "urn:ngsi-ld:Car:1", "type": "Car", "speed": {"type": "Property", "value": 1}}
    assert (await client.post(E, json=body)).status == 201
    for value in (2, 3, 4):
        one = await (await client.get(f"{E}/urn:ngsi-ld:Car:1")).json()
        many = await (await client.get(E, params={"type": "Car", "q": "speed>0"})).json()
        assert one["speed"]["value"] == value - 1 and many == [one]
        patch = await client.patch(f"{E}/urn:ngsi-ld:Car:1/attrs/speed",
                                   json={"type": "Property", "value": value})
        assert patch.status == 204
    assert client.app[BROKER].renders.hits > 0


async def test_a_retrieve_skips_the_store_only_until_anything_is_written(
        tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "shared.db")
    other = SqliteStore(tmp_path / "shared.db")  # another broker process on the same file
    app = create_app(Settings(), store=store)
    url = f"{E}/urn:ngsi-ld:Car:9"
    async with TestClient(TestServer(app)) as client:
        await other.open()
        try:
            body = {"id": "urn:ngsi-ld:Car:9", "type": "Car",
                    "speed": {"type": "Property", "value": 1}}
            assert (await client.post(E, json=body)).status == 201
            for _ in range(3):
                assert (await (await client.get(url)).json())["speed"]["value"] == 1
            # the 2nd read no store (its version known), the 3rd is the 2nd again
            assert (app[BROKER].versions.hits, app[HOT].hits) == (1, 1)
            stored = await other.get_entity("", "urn:ngsi-ld:Car:9")
            assert stored is not None
            speed = next(iter(k for k in stored["attrs"] if k.endswith("speed")))
            stored["attrs"][speed][0]["value"] = 2
            await other.modify("", "urn:ngsi-ld:Car:9", lambda _: stored)
            assert (await (await client.get(url)).json())["speed"]["value"] == 2
            await other.modify("", "urn:ngsi-ld:Car:9", lambda _: None)
            assert (await client.get(url)).status == 404
        finally:
            await other.close()


async def test_recreated_entity_is_not_served_from_the_cache(client: TestClient) -> None:
    for colour in ("red", "blue"):
        body = {"id": "urn:ngsi-ld:Car:2", "type": "Car",
                "colour": {"type": "Property", "value": colour}}
        assert (await client.post(E, json=body)).status == 201
        got = await (await client.get(f"{E}/urn:ngsi-ld:Car:2")).json()
        assert got["colour"]["value"] == colour
        assert (await client.delete(f"{E}/urn:ngsi-ld:Car:2")).status == 204


async def test_views_and_media_types_are_cached_apart(client: TestClient) -> None:
    body = {"id": "urn:ngsi-ld:Car:3", "type": "Car", "speed": {"type": "Property", "value": 5},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}}}
    await client.post(E, json=body)
    url = f"{E}/urn:ngsi-ld:Car:3"
    for _ in range(2):
        normal = await (await client.get(url)).json()
        simple = await (await client.get(url, params={"options": "keyValues"})).json()
        ld = await (await client.get(url, headers={"Accept": "application/ld+json"})).json()
        geo = await (await client.get(E, params={"type": "Car"},
                                      headers={"Accept": "application/geo+json"})).json()
        assert normal["speed"] == {"type": "Property", "value": 5}
        assert simple["speed"] == 5
        assert ld["@context"] and ld["speed"] == normal["speed"]
        assert geo["type"] == "FeatureCollection"
        assert geo["features"][0]["geometry"] == {"type": "Point", "coordinates": [1, 2]}
