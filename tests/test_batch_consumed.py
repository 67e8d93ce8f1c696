"""A batch decoded from its bytes lets each element go once it is parsed (issue 19,
broker/service/batch.py): its answers, the entities stored and the elements handed to
Context Sources are what the same batch given decoded (kept whole) gives, and a body
given decoded is left as it was given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.config import Settings
from broker.contexts import ContextResolver
from broker.service import BatchParts, Call, Service, batch, queries
from broker.service.ports import NoSources
from ngsi_ld.bodies import JSON, LD_JSON, Body, request_context
from ngsi_ld.jsonld import core_context_url
from ngsi_ld.params import QueryParams
from storage import MemoryStore

ROOM = "urn:ngsi-ld:Room:"
_OPERATIONS = {"create": batch.batch_create, "upsert": batch.batch_upsert,
               "update": batch.batch_update, "merge": batch.batch_merge}
_CONTEXTS = st.sampled_from([
    core_context_url(),
    {"temperature": "https://example.org/temperature"},
    [{"Room": "https://example.org/Room"}, core_context_url()],
])
_VALUES = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none(), st.booleans(),
                    st.just("urn:ngsi-ld:null"), st.just({"@type": "DateTime",
                                                          "@value": "2024-01-01T00:00:00Z"}),
                    st.lists(st.integers(0, 3), max_size=2))


@st.composite
def _elements(draw: st.DrawFn, ld: bool) -> Any:
    """One element of a batch: most of them Rooms of a few shapes (the templates' way),
    some refused (no id, no type, a bad value or relationship, not an object)."""
    kind = draw(st.sampled_from(["room", "room", "room", "odd", "other"]))
    if kind == "other":
        return draw(st.one_of(st.integers(-9, 9), st.text(max_size=3), st.lists(st.integers(0, 9),
                                                                           max_size=2)))
    element: dict[str, Any] = {"id": f"{ROOM}{draw(st.integers(0, 4))}", "type": "Room",
                               "temperature": {"type": "Property", "value": draw(_VALUES)}}
    if draw(st.booleans()):
        element["inRoom"] = {"type": "Relationship",
                             "object": draw(st.sampled_from([f"{ROOM}9", "not a uri", 5]))}
    if kind == "odd":
        dropped = draw(st.sampled_from(["id", "type", None]))
        if dropped is not None:
            del element[dropped]
        element["temperature"]["observedAt"] = draw(st.sampled_from(
            ["2024-01-01T00:00:00Z", "yesterday"]))
    if ld and draw(st.integers(0, 9)):  # now and then one without: refused in LD
        element["@context"] = draw(_CONTEXTS)
    return element


@st.composite
def _batches(draw: st.DrawFn) -> tuple[str, str, bytes]:
    ld = draw(st.booleans())
    elements = draw(st.lists(_elements(ld), min_size=1, max_size=8))
    return draw(st.sampled_from(sorted(_OPERATIONS))), LD_JSON if ld else JSON, \
        orjson.dumps(elements)


def _decode(raw: bytes, media: str) -> Body:
    data = orjson.loads(raw)
    return Body(data=data, media_type=media,
                client_context=request_context(data, media, None, item_contexts=True))


def _from_bytes(raw: bytes, media: str) -> Callable[[], Awaitable[Callable[[], Body]]]:
    """A body as the HTTP layer hands it over: its bytes, decoded afresh at each call."""
    async def read() -> Callable[[], Body]:
        return lambda: _decode(raw, media)
    return read


def _call() -> Call:
    return Call(params=QueryParams({}), path="/ngsi-ld/v1/entityOperations/x",
                path_qs="/ngsi-ld/v1/entityOperations/x")


class _Recording:
    """Context Sources that serve every tenant, take nothing and note what they were
    handed: each element's id and the element as sent."""

    def __init__(self) -> None:
        self.items: list[list[tuple[str, Any]]] = []

    def serves(self, tenant: str) -> bool:
        return True

    async def forward_batch(self, tenant: str, operation: str,
                            items: Sequence[tuple[str, Any, Any]], call: Call) -> BatchParts:
        self.items.append([(entity_id, sent) for entity_id, _, sent in items])
        return BatchParts(frozenset(range(len(items))))


async def _run(operation: str, source: batch.BodySource, twice: bool,
               sources: _Recording | None = None) -> tuple[Any, ...]:
    """The replies of the batch sent (twice: the second meets what the first stored) and
    the Rooms stored after."""
    store = MemoryStore()
    await store.open()
    service = Service(Settings(store="memory:"), store, ContextResolver(store))
    if sources is not None:
        service.sources = sources  # type: ignore[assignment]
    replies = []
    for _ in range(2 if twice else 1):
        reply = await _OPERATIONS[operation](service, _call(), source)
        replies.append((reply.status, reply.body))
    service.sources = NoSources()  # the Rooms stored here
    found = await queries.query_entities(service, Call(
        params=QueryParams({"type": "Room", "limit": "1000"}),
        path="/ngsi-ld/v1/entities", path_qs="/ngsi-ld/v1/entities"))
    await store.close()
    return replies, found.body


@settings(max_examples=150, deadline=None)
@given(_batches(), st.booleans())
def test_a_batch_from_its_bytes_answers_and_stores_what_it_does_given_decoded(
        sent: tuple[str, str, bytes], twice: bool) -> None:
    operation, media, raw = sent

    async def both() -> None:
        given_decoded = _decode(raw, media)
        kept = await _run(operation, given_decoded, twice)
        assert await _run(operation, _from_bytes(raw, media), twice) == kept
        # a body given decoded is the caller's: left whole
        assert given_decoded.data == orjson.loads(raw)
    asyncio.run(both())


@settings(max_examples=60, deadline=None)
@given(_batches())
def test_sources_are_handed_the_elements_as_sent(sent: tuple[str, str, bytes]) -> None:
    operation, media, raw = sent

    async def both() -> None:
        from_bytes, given_decoded = _Recording(), _Recording()
        replies = await _run(operation, _from_bytes(raw, media), False, from_bytes)
        assert replies == await _run(operation, _decode(raw, media), False, given_decoded)
        assert from_bytes.items == given_decoded.items
        # each one an element of the body as it was sent, @context and all
        elements = orjson.loads(raw)
        for handed in from_bytes.items:
            assert all(element in elements for _, element in handed)
            assert all(isinstance(e, dict) and "@context" in e
                       for _, e in handed) or media == JSON
    asyncio.run(both())


def test_a_batch_from_its_bytes_lets_its_elements_go_as_it_parses_them() -> None:
    """The body the parse was given holds no element once parsed (the rest of the batch
    works on the parsed entities)."""
    raw = orjson.dumps([{"id": f"{ROOM}{n}", "type": "Room",
                         "temperature": {"type": "Property", "value": n}} for n in range(5)])
    bodies: list[Body] = []

    def decode() -> Body:
        bodies.append(_decode(raw, JSON))
        return bodies[-1]

    async def read() -> Callable[[], Body]:
        return decode

    async def run() -> None:
        store = MemoryStore()
        await store.open()
        service = Service(Settings(store="memory:"), store, ContextResolver(store))
        reply = await batch.batch_upsert(service, _call(), read)
        assert reply.status == 201
        assert len(bodies) == 1 and bodies[0].data == [None] * 5
        await store.close()
    asyncio.run(run())
