"""The pieces of a hub's page (broker.federation.reads): a merged answer whose entities
outside the page are made only when asked for (``Paged``), the ids of a ``pick=id``
answer read without an object each (``wire.raw_ids``), the sources' entities expanded
once by their content (``expansions.Expansions``)."""

from __future__ import annotations

from typing import Any, cast

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.federation.expansions import Expansions
from broker.federation.reads import Paged, sorted_union
from broker.federation.wire import InvalidAnswer, RawEntity, expand_raw, raw_entities, raw_ids
from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld import ActiveContext, compile_context, core_context_url


def _entity(i: int) -> dict[str, Any]:
    return {"id": f"urn:x:{i:04d}", "type": ["T"], "attrs": {"a": [{"value": i}]}}


@given(st.integers(0, 30), st.integers(0, 12), st.integers(0, 30), st.data())
def test_paged_is_the_list_it_stands_for(before: int, page: int, after: int,
                                         data: st.DataObject) -> None:
    ids = [f"urn:x:{i:04d}" for i in range(before + page + after)]
    entities = [_entity(i) for i in range(before, before + page)]
    paged = Paged(ids[:before], entities, ids[before + page:])
    whole = [{"id": i, "type": [], "attrs": {}} for i in ids[:before]] + entities + \
        [{"id": i, "type": [], "attrs": {}} for i in ids[before + page:]]
    assert len(paged) == len(whole)
    assert list(paged) == whole
    assert paged[before:before + page] == entities  # the page cut as the query cuts it
    assert all(a is b for a, b in zip(paged[before:before + page], entities, strict=True))
    start = data.draw(st.integers(-40, 80))
    stop = data.draw(st.integers(-40, 80))
    step = data.draw(st.sampled_from([1, 2, 3, -1]))
    assert paged[start:stop:step] == whole[start:stop:step]
    for index in (0, -1, before, before + page - 1, len(whole) // 2):
        if -len(whole) <= index < len(whole):
            assert paged[index] == whole[index]
    with pytest.raises(IndexError):
        paged[len(whole)]
    with pytest.raises(IndexError):
        paged[-len(whole) - 1]


@given(st.lists(st.lists(st.text("ab:", max_size=4), max_size=30), max_size=4),
       st.booleans())
def test_sorted_union_is_the_sorted_set_of_every_id(parts: list[list[str]],
                                                    runs: bool) -> None:
    if runs:  # as the parties answer: each sorted
        parts = [sorted(part) for part in parts]
    assert sorted_union(*parts) == sorted(set().union(*parts))


_CTX = cast(ActiveContext, object())  # only carried along, never used here


class _Resolver:
    """Resolves one @context (None or the core context) and refuses the others."""

    def __init__(self) -> None:
        self.asked: list[Any] = []

    async def active(self, context: Any) -> ActiveContext:
        self.asked.append(context)
        if context not in (None, "https://example.org/ok.jsonld"):
            raise BadRequestData("no such context")
        return _CTX


@pytest.mark.parametrize("body", [
    [{"id": "urn:x:1"}, {"id": "urn:x:2"}],
    [],
    {"id": "urn:x:1"},  # one object rather than an array of one (read leniently)
    [{"id": "urn:x:1", "@context": "https://example.org/ok.jsonld"}],
])
async def test_raw_ids_are_the_ids_of_the_entities(body: Any) -> None:
    data = orjson.dumps(body)
    resolver = _Resolver()
    ids = await raw_ids(data, {"Content-Type": "application/ld+json"}, resolver, None)
    raws = await raw_entities(data, {"Content-Type": "application/ld+json"}, _Resolver(),
                              None, many=True)
    assert ids == [raw.id for raw in raws]


@pytest.mark.parametrize("body", [
    b"not json", b"[1, 2]", b'[{"id": 1}]', b'[{"type": "T"}]', b'["urn:x:1"]',
    b'[{"id": "urn:x:1"}, null]',
])
async def test_raw_ids_refuses_what_raw_entities_refuses(body: bytes) -> None:
    with pytest.raises(InvalidAnswer):
        await raw_entities(body, {}, _Resolver(), None, many=True)
    with pytest.raises(InvalidAnswer):
        await raw_ids(body, {}, _Resolver(), None)


async def test_raw_ids_needs_a_usable_context() -> None:
    body = b'[{"id": "urn:x:1"}]'
    link = {"Link": '<https://example.org/gone.jsonld>; '
                    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}
    with pytest.raises(InvalidAnswer):
        await raw_entities(body, link, _Resolver(), None, many=True)
    with pytest.raises(InvalidAnswer):
        await raw_ids(body, link, _Resolver(), None)


def _streetlight(i: int, power: float = 10.0) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Streetlight:{i}", "type": "Streetlight",
            "powerState": {"type": "Property", "value": "on"},
            "powerConsumption": {"type": "Property", "value": power, "unitCode": "WTT",
                                 "observedAt": "2026-11-01T00:00:00.000Z"},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [114.1, 22.3]}}}


async def test_an_entity_seen_again_is_the_same_expansion_in_a_new_copy() -> None:
    ctx = compile_context(None, {}, core_context_url("1.8"))
    expansions = Expansions()
    first = expansions.expand(RawEntity("urn:ngsi-ld:Streetlight:1", _streetlight(1), ctx))
    again = expansions.expand(RawEntity("urn:ngsi-ld:Streetlight:1", _streetlight(1), ctx))
    assert (expansions.misses, expansions.hits) == (1, 1)
    assert again == first == expand_raw(RawEntity("urn:ngsi-ld:Streetlight:1",
                                                  _streetlight(1), ctx))
    assert again is not first
    assert again["attrs"] is not first["attrs"]  # nothing shared between two answers
    # another content, another @context compilation: expanded afresh
    changed = expansions.expand(RawEntity("urn:ngsi-ld:Streetlight:1",
                                          _streetlight(1, 11.0), ctx))
    assert changed != first
    other = compile_context({"ex": "https://example.org/"}, {}, core_context_url("1.8"))
    expansions.expand(RawEntity("urn:ngsi-ld:Streetlight:1", _streetlight(1), other))
    assert (expansions.misses, expansions.hits) == (3, 1)


async def test_an_invalid_entity_is_refused_every_time() -> None:
    ctx = compile_context(None, {}, core_context_url("1.8"))
    expansions = Expansions()
    bad = {"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight", "p": {"type": "Nope"}}
    for _ in range(2):
        with pytest.raises(InvalidAnswer):
            expansions.expand(RawEntity(bad["id"], bad, ctx))
    assert (expansions.misses, expansions.hits) == (2, 0)


async def test_the_oldest_is_dropped_and_a_large_one_not_kept() -> None:
    ctx = compile_context(None, {}, core_context_url("1.8"))
    expansions = Expansions(size=2, max_bytes=600)
    for i in (1, 2, 3, 3, 1):
        expansions.expand(RawEntity(f"urn:ngsi-ld:Streetlight:{i}", _streetlight(i), ctx))
    assert (expansions.misses, expansions.hits) == (4, 1)  # 1 was dropped for 3
    large = {**_streetlight(9), "note": {"type": "Property", "value": "x" * 600}}
    for _ in range(2):
        expansions.expand(RawEntity(large["id"], large, ctx))
    assert (expansions.misses, expansions.hits) == (6, 1)


async def test_what_is_kept_stays_within_its_budget_in_bytes() -> None:
    """The expansions and renderings held never pass the budget: the oldest entries go
    first (an expanded entity is longer than the JSON it came from)."""
    ctx = compile_context(None, {}, core_context_url("1.8"))
    one = Expansions()
    raw = RawEntity("urn:ngsi-ld:Streetlight:0", _streetlight(0), ctx)
    one.expand(raw)
    per_entity = one.held
    assert per_entity > len(Expansions.key(raw)[0])  # the key and its longer expansion
    plain = Expansions(budget=2 * per_entity + 10)
    for i in range(4):
        plain.expand(RawEntity(f"urn:ngsi-ld:Streetlight:{i}", _streetlight(i), ctx))
        assert plain.held <= plain.budget
    for i in (3, 2, 1):
        plain.expand(RawEntity(f"urn:ngsi-ld:Streetlight:{i}", _streetlight(i), ctx))
    assert (plain.misses, plain.hits) == (5, 2)  # 1 was dropped for 3, 0 for 2
    expansions = Expansions(budget=3 * per_entity + 100)
    keys = []
    for i in range(6):
        raw = RawEntity(f"urn:ngsi-ld:Streetlight:{i}", _streetlight(i), ctx)
        key = Expansions.key(raw)
        keys.append(key)
        expansions.expand(raw, key)
        assert expansions.held <= expansions.budget
        expansions.keep_rendering(key, 1, ctx, raw.id, b"x" * 40)
        assert expansions.held <= expansions.budget
    # the newest entries are kept with their renderings, the oldest were dropped
    assert expansions.rendered(keys[-1], 1, ctx) == ("urn:ngsi-ld:Streetlight:5", b"x" * 40)
    assert expansions.rendered(keys[0], 1, ctx) is None
    expansions.expand(RawEntity("urn:ngsi-ld:Streetlight:0", _streetlight(0), ctx))
    assert expansions.misses == 7 and expansions.hits == 0
    # a rendering that does not fit beside its own entity is not kept
    tight = Expansions(budget=per_entity + 10)
    raw = RawEntity("urn:ngsi-ld:Streetlight:0", _streetlight(0), ctx)
    key = Expansions.key(raw)
    tight.expand(raw, key)
    tight.keep_rendering(key, 1, ctx, raw.id, b"x" * 40)
    assert tight.rendered(key, 1, ctx) is None and tight.held == per_entity
