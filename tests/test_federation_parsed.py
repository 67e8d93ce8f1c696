"""A source's answer read before, by its bytes (``broker.federation.parsed``), and the
forwarded query's text (``wire.query_string``): what a hub reads from a source's answer
is the same whether its bytes were seen before or not, no answer shares a mutable
object with another, and the @context is resolved anew every time."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.federation.expansions import Expansions
from broker.federation.parsed import ParsedAnswers
from broker.federation.wire import InvalidAnswer, RawEntity, query_string, raw_entities, raw_ids
from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld import ActiveContext

OK = "https://example.org/ok.jsonld"
OTHER = "https://example.org/other.jsonld"


class _Context:
    """A stand-in for a compiled @context: which @context it was resolved from, and
    which resolution (a new object each time, as after a context is fetched anew)."""

    def __init__(self, context: Any, serial: int) -> None:
        self.context = context
        self.serial = serial


class _Resolver:
    """Resolves None, OK, OTHER and inline objects, a new object each time; refuses the
    rest (or everything once ``refuse`` is set)."""

    def __init__(self) -> None:
        self.asked: list[Any] = []
        self.refuse = False

    async def active(self, context: Any) -> ActiveContext:
        self.asked.append(context)
        if self.refuse or not (context in (None, OK, OTHER) or isinstance(context, dict)):
            raise BadRequestData("no such context")
        return _Context(context, len(self.asked))  # type: ignore[return-value]


def _lamp(i: int, **more: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lamp:{i}", "type": "Lamp",
            "luminosity": {"type": "Property", "value": {"lux": i, "on": [True, None]}},
            **more}


def _read(raws: list[RawEntity]) -> list[tuple[str, Any, Any]]:
    return [(raw.id, raw.item, raw.ctx.context) for raw in raws]  # type: ignore[attr-defined]


BODIES = [
    ([_lamp(1), _lamp(2)], {"Link": f'<{OK}>; rel="http://www.w3.org/ns/json-ld#context"'}),
    ([_lamp(1), _lamp(2)], {}),
    (_lamp(3), {}),  # one object for an array of one, read leniently
    ([], {}),
    ([_lamp(1, **{"@context": OTHER}), _lamp(2, **{"@context": {"x": "urn:x"}}), _lamp(3)],
     {"Content-Type": "application/ld+json"}),
    ([_lamp(1, **{"@context": OTHER}), _lamp(2)],  # a Link: the inline one is not used
     {"Content-Type": "application/json",
      "Link": f'<{OK}>; rel="http://www.w3.org/ns/json-ld#context"'}),
]


@pytest.mark.parametrize(("data", "headers"), BODIES)
@pytest.mark.parametrize("many", [True, False])
async def test_an_answer_read_again_is_read_the_same(data: Any, headers: dict[str, str],
                                                      many: bool) -> None:
    body = orjson.dumps(data)
    parsed = ParsedAnswers()
    try:
        fresh = _read(await raw_entities(body, headers, _Resolver(), None, many=many))
    except InvalidAnswer:
        with pytest.raises(InvalidAnswer):
            await raw_entities(body, headers, _Resolver(), None, many=many, parsed=parsed)
        assert parsed.held == 0  # an invalid answer is not kept, and fails again
        with pytest.raises(InvalidAnswer):
            await raw_entities(body, headers, _Resolver(), None, many=many, parsed=parsed)
        return
    first = await raw_entities(body, headers, _Resolver(), None, many=many, parsed=parsed)
    resolver = _Resolver()
    again = await raw_entities(body, headers, resolver, None, many=many, parsed=parsed)
    assert parsed.hits == 1
    assert _read(first) == _read(again) == fresh
    assert [raw.sent for raw in again] == [orjson.dumps(item) for _, item, _ in fresh]
    # the @context resolved anew: this request's resolver made every ctx of ``again``
    made = set(range(1, len(resolver.asked) + 1))
    assert {raw.ctx.serial for raw in again} <= made  # type: ignore[attr-defined]
    # no object shared: what one request does to an entity no other sees (the request
    # that read the answer first, and one that read it kept)
    for one, other in zip(first, again, strict=True):
        assert one.item is not other.item
        one.item["luminosity"]["value"]["on"].append("changed")
        one.item.pop("type")
    assert _read(again) == fresh
    third = await raw_entities(body, headers, _Resolver(), None, many=many, parsed=parsed)
    for raw in again:
        raw.item["luminosity"]["value"]["on"].append("changed")
        raw.item.pop("type")
    assert _read(third) == fresh
    assert parsed.hits == 2


async def test_the_context_of_an_answer_read_before_is_resolved_anew() -> None:
    body = orjson.dumps([_lamp(1)])
    link = {"Link": f'<{OK}>; rel="http://www.w3.org/ns/json-ld#context"'}
    parsed = ParsedAnswers()
    resolver = _Resolver()
    first = await raw_entities(body, link, resolver, None, many=True, parsed=parsed)
    again = await raw_entities(body, link, resolver, None, many=True, parsed=parsed)
    assert resolver.asked == [OK, OK]
    assert first[0].ctx is not again[0].ctx  # the later resolution's, not a kept one
    other = {"Link": f'<{OTHER}>; rel="http://www.w3.org/ns/json-ld#context"'}
    later = await raw_entities(body, other, resolver, None, many=True, parsed=parsed)
    assert later[0].ctx.context == OTHER  # type: ignore[attr-defined]  # the headers read anew
    resolver.refuse = True
    with pytest.raises(InvalidAnswer):
        await raw_entities(body, link, resolver, None, many=True, parsed=parsed)
    assert parsed.hits == 3


async def test_ids_read_again_are_the_same_and_checked_the_same() -> None:
    body = orjson.dumps([{"id": "urn:x:1"}, {"id": "urn:x:2"}])
    parsed = ParsedAnswers()
    resolver = _Resolver()
    first = await raw_ids(body, {}, resolver, None, parsed)
    first.append("urn:x:changed")
    again = await raw_ids(body, {}, resolver, None, parsed)
    assert again == ["urn:x:1", "urn:x:2"] and parsed.hits == 1
    assert resolver.asked == [None, None]  # the @context resolved on a kept answer too
    unknown = {"Link": '<https://example.org/no.jsonld>; '
                       'rel="http://www.w3.org/ns/json-ld#context"'}
    with pytest.raises(InvalidAnswer):
        await raw_ids(body, unknown, resolver, None, parsed)
    # JSON-LD: the ids of the entities read with their own @context, kept as entities
    inline = orjson.dumps([{"id": "urn:x:1", "@context": OK}])
    headers = {"Content-Type": "application/ld+json"}
    assert await raw_ids(inline, headers, resolver, None, parsed) == ["urn:x:1"]
    assert await raw_ids(inline, headers, resolver, None, parsed) == ["urn:x:1"]
    bad = orjson.dumps([{"id": 1}])
    for _ in range(2):
        with pytest.raises(InvalidAnswer):
            await raw_ids(bad, {}, resolver, None, parsed)


async def test_what_is_kept_is_bounded() -> None:
    resolver = _Resolver()
    bodies = [orjson.dumps([_lamp(i)]) for i in range(6)]
    parsed = ParsedAnswers(size=4)
    for body in bodies:
        await raw_entities(body, {}, resolver, None, many=True, parsed=parsed)
    assert parsed.misses == 6
    for body in bodies[2:]:  # the oldest two were dropped
        await raw_entities(body, {}, resolver, None, many=True, parsed=parsed)
    assert parsed.hits == 4
    await raw_entities(bodies[0], {}, resolver, None, many=True, parsed=parsed)
    assert parsed.misses == 7
    one = len(bodies[0]) + len(orjson.dumps(_lamp(0)))
    small = ParsedAnswers(budget=2 * one + 10)
    for body in bodies[:4]:
        await raw_entities(body, {}, resolver, None, many=True, parsed=small)
        assert small.held <= small.budget
    assert small.held == sum(len(b) + len(b) - 2 for b in bodies[2:4])  # two kept
    large = orjson.dumps([_lamp(i) for i in range(40)])
    tiny = ParsedAnswers(max_bytes=len(large) - 1)
    for _ in range(2):
        await raw_entities(large, {}, resolver, None, many=True, parsed=tiny)
    assert tiny.hits == 0 and tiny.held == 0


def test_a_raw_entity_makes_its_item_or_its_json_once() -> None:
    ctx: Any = object()
    item = _lamp(1)
    given_item = RawEntity(item["id"], item, ctx)
    given_json = RawEntity(item["id"], None, ctx, orjson.dumps(item))
    assert given_item.sent == given_json.sent == orjson.dumps(item)
    assert given_item.sent is given_item.sent
    assert given_json.item == item and given_json.item is given_json.item
    assert Expansions.key(given_item) == Expansions.key(given_json) == (orjson.dumps(item), ctx)
    with pytest.raises(ValueError):
        RawEntity("urn:x:1", None, ctx)


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=40)), max_size=6))
def test_query_string_is_urlencode(pairs: list[tuple[str, str]]) -> None:
    assert query_string(pairs) == urlencode(pairs)


@given(st.lists(st.tuples(st.text(st.characters(max_codepoint=127), max_size=12),
                          st.text(st.characters(max_codepoint=127), max_size=40)),
                max_size=6))
def test_query_string_is_urlencode_of_ascii(pairs: list[tuple[str, str]]) -> None:
    assert query_string(pairs) == urlencode(pairs)
