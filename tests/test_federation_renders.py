"""A hub's page rendered from the renderings kept of the sources' entities
(``broker.service.source_renders``, ``broker.federation.expansions``): the same answers
as the page rendered afresh, for any entities and retrieval options; and the renderings
used only where nothing but the source's JSON, the View and the @context decides them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.app import BROKER, create_app
from broker.config import Settings
from broker.federation import FederatedSources
from broker.federation.expansions import Expansions
from tests.test_federation_forwarding import registration, started_hub, url_of

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
E = "/ngsi-ld/v1/entities"
JSON = {"Content-Type": "application/json"}
#: headers of an answer that differ between two computations of the same answer
PER_ANSWER = {"Date", "Server", "Content-Length", "Ngsild-Request-Id", "X-Request-Id"}


def _sources(hub: TestClient) -> FederatedSources:
    sources = hub.app[BROKER].service.sources
    assert isinstance(sources, FederatedSources)
    return sources


async def _answer(hub: TestClient, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    response = await hub.get(path, headers={**headers, "Cache-Control": "no-cache"})
    kept = tuple(sorted((k, v) for k, v in response.headers.items()
                        if k.title() not in PER_ANSWER))
    return response.status, kept, await response.read()


# -- the property: the same answers either way -------------------------------------------

_values = st.one_of(
    st.integers(-5, 5), st.floats(-1e3, 1e3, allow_nan=False), st.sampled_from(["on", ""]),
    st.booleans(), st.lists(st.integers(0, 3), max_size=3),
    st.fixed_dictionaries({"k": st.integers(0, 2)}),
)
_stamps = st.sampled_from(["2026-01-01T00:00:00Z", "2026-06-01T12:30:00.250Z"])


#: the kind of each attribute name (a GeoProperty is named location, ...)
_KINDS = {"p": "Property", "s": "Property", "rel": "Relationship", "location": "GeoProperty",
          "name": "LanguageProperty"}


@st.composite
def _attribute(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    attr: dict[str, Any]
    if kind == "Property":
        attr = {"type": "Property", "value": draw(_values)}
        if draw(st.booleans()):
            attr["unitCode"] = "CEL"
    elif kind == "Relationship":
        attr = {"type": "Relationship", "object": f"urn:ngsi-ld:Car:{draw(st.integers(0, 3))}"}
    elif kind == "GeoProperty":
        attr = {"type": "GeoProperty", "value": {
            "type": "Point", "coordinates": [draw(st.integers(-10, 10)), 2.5]}}
    else:
        attr = {"type": "LanguageProperty", "languageMap": draw(st.sampled_from([
            {"en": "lamp", "de": "Lampe"}, {"fr": "lampe"}, {"@none": "x", "en": "y"}]))}
    if draw(st.booleans()):
        attr["observedAt"] = draw(_stamps)
    if draw(st.booleans()):
        attr["sub"] = {"type": "Property", "value": draw(st.integers(0, 9))}
    if draw(st.integers(0, 9)) == 0:  # 4.22: an instance that may expire, not yet expired
        attr["expiresAt"] = (datetime.now(UTC) + timedelta(days=2)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    return attr


@st.composite
def _entity(draw: st.DrawFn, n: int) -> dict[str, Any]:
    entity: dict[str, Any] = {"id": f"urn:ngsi-ld:Lamp:{n:03d}", "type": "Lamp"}
    for name in draw(st.lists(st.sampled_from(sorted(_KINDS)), unique=True, max_size=4)):
        entity[name] = draw(_attribute(_KINDS[name]))
    if draw(st.integers(0, 4)) == 0:  # 4.18 datasetId: several instances of one attribute
        entity["p"] = [{"type": "Property", "value": 1},
                       {"type": "Property", "value": 2, "datasetId": "urn:ngsi-ld:d:1"}]
    if draw(st.integers(0, 5)) == 0:
        entity["scope"] = "/town/north"
    return entity


@st.composite
def _entities(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [draw(_entity(n)) for n in range(draw(st.integers(1, 6)))]


_params = st.fixed_dictionaries({"type": st.sampled_from(["Lamp", "Lamp,Car"])}, optional={
    "options": st.sampled_from(["keyValues", "sysAttrs", "concise", "normalized",
                                "keyValues,sysAttrs", "concise,sysAttrs"]),
    "format": st.sampled_from(["simplified", "normalized"]),
    "attrs": st.sampled_from(["p", "s,name", "rel", "nothing"]),
    "pick": st.sampled_from(["id,p", "id,type,name", "rel"]),
    "omit": st.sampled_from(["p", "type,s"]),
    "lang": st.sampled_from(["en", "de", "*", "fr,en"]),
    "datasetId": st.sampled_from(["urn:ngsi-ld:d:1", "@none"]),
    "limit": st.sampled_from(["1", "2", "20"]),
    "offset": st.sampled_from(["0", "1", "3"]),
    "count": st.just("true"),
    "q": st.sampled_from(["p>=1", "s"]),
    "join": st.sampled_from(["inline", "flat"]),
})
_headers = st.fixed_dictionaries({}, optional={
    "Accept": st.sampled_from(["application/json", "application/ld+json",
                               "application/geo+json"]),
    "Link": st.just(f'<{CORE}>; rel="http://www.w3.org/ns/json-ld#context"; '
                    'type="application/ld+json"'),
    "Prefer": st.just("body=json"),
})


async def _same_answers(entities: list[dict[str, Any]], local: list[int],
                        requests: list[tuple[dict[str, str], dict[str, str]]]) -> None:
    source = TestClient(TestServer(create_app(Settings(store="memory:"))))
    await source.start_server()
    hub, registry = await started_hub(
        Settings(store="memory:", forward_timeout=10.0, outbound_allow="127.0.0.0/8"))
    sources = _sources(hub)
    kept = sources.expansions
    try:
        done = await source.post(f"{E[:-9]}/entityOperations/upsert",
                                 data=orjson.dumps(entities), headers=JSON)
        assert done.status in (201, 204), await done.text()
        registry.put("", registration(url_of(source)))
        # some entities held at the hub too: merged with the source's (4.5.5)
        for n in local:
            if n < len(entities):
                held = {**entities[n], "p": {"type": "Property", "value": 7}}
                made = await hub.post(E, data=orjson.dumps(held), headers=JSON)
                assert made.status == 201, await made.text()
        for params, headers in requests:
            path = f"{E}?{urlencode(params)}"
            # the page rendered afresh, as before kept renderings: none kept
            sources.expansions = Expansions(render_views=0)
            expected = await _answer(hub, path, headers)
            sources.expansions = kept
            first = await _answer(hub, path, headers)  # renderings offered, kept
            again = await _answer(hub, path, headers)  # kept renderings stand in
            assert first == expected, (path, headers)
            assert again == expected, (path, headers)
    finally:
        await hub.close()
        await source.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_entities(), st.lists(st.integers(0, 5), max_size=2, unique=True),
       st.lists(st.tuples(_params, _headers), min_size=1, max_size=5))
def test_a_page_from_kept_renderings_is_the_page_rendered_afresh(
        entities: list[dict[str, Any]], local: list[int],
        requests: list[tuple[dict[str, str], dict[str, str]]]) -> None:
    asyncio.run(_same_answers(entities, local, requests))


# -- where kept renderings serve, and where not ----------------------------------------------

class _Fed:
    def __init__(self, hub: TestClient, source: TestClient) -> None:
        self.hub, self.source = hub, source

    @property
    def expansions(self) -> Expansions:
        return _sources(self.hub).expansions

    async def twice(self, path: str, headers: dict[str, str] | None = None) -> int:
        """Renderings served to the second of two equal queries (the answers equal)."""
        first = await _answer(self.hub, path, headers or {})
        before = self.expansions.rendered_hits
        again = await _answer(self.hub, path, headers or {})
        assert first == again
        assert first[0] == 200
        return self.expansions.rendered_hits - before


@pytest.fixture
async def fed() -> AsyncIterator[_Fed]:
    source = TestClient(TestServer(create_app(Settings(store="memory:"))))
    await source.start_server()
    hub, registry = await started_hub(
        Settings(store="memory:", forward_timeout=10.0, outbound_allow="127.0.0.0/8"))
    registry.put("", registration(url_of(source)))
    lamps = [{"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp",
              "p": {"type": "Property", "value": n}} for n in range(3)]
    done = await source.post(f"{E[:-9]}/entityOperations/upsert", data=orjson.dumps(lamps),
                             headers=JSON)
    assert done.status == 201
    yield _Fed(hub, source)
    await hub.close()
    await source.close()


async def test_kept_renderings_stand_in_for_a_sources_entities(fed: _Fed) -> None:
    assert await fed.twice(f"{E}?type=Lamp") == 3
    assert await fed.twice(f"{E}?type=Lamp&offset=1&limit=1") == 1
    # another View, another rendering: kept apart
    assert await fed.twice(f"{E}?type=Lamp&options=keyValues") == 3
    body = await (await fed.hub.get(f"{E}?type=Lamp&options=keyValues")).json()
    assert [e["p"] for e in body] == [0, 1, 2]
    # a changed entity is new content: rendered, then kept
    patched = await fed.source.patch(f"{E}/urn:ngsi-ld:Lamp:1/attrs",
                                     data=orjson.dumps({"p": {"type": "Property",
                                                              "value": 10}}), headers=JSON)
    assert patched.status == 204
    body = await (await fed.hub.get(f"{E}?type=Lamp&options=keyValues")).json()
    assert [e["p"] for e in body] == [0, 10, 2]


async def test_an_entity_that_may_expire_is_rendered_every_time(fed: _Fed) -> None:
    at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    made = await fed.source.post(E, data=orjson.dumps({
        "id": "urn:ngsi-ld:Lamp:x", "type": "Lamp",
        "p": {"type": "Property", "value": 1, "expiresAt": at}}), headers=JSON)
    assert made.status == 201
    assert await fed.twice(f"{E}?type=Lamp") == 3  # the three others only


async def test_an_entity_held_here_too_is_merged_every_time(fed: _Fed) -> None:
    made = await fed.hub.post(E, data=orjson.dumps({
        "id": "urn:ngsi-ld:Lamp:0", "type": "Lamp",
        "q": {"type": "Property", "value": 1}}), headers=JSON)
    assert made.status == 201
    assert await fed.twice(f"{E}?type=Lamp") == 2
    body = await (await fed.hub.get(f"{E}?type=Lamp&id=urn:ngsi-ld:Lamp:0")).json()
    assert {"p", "q"} <= set(body[0])


@pytest.mark.parametrize("path, headers", [
    (f"{E}?type=Lamp", {"Accept": "application/ld+json"}),  # the @context in each entity
    (f"{E}?type=Lamp", {"Accept": "application/geo+json"}),  # Features
    (f"{E}?type=Lamp&join=inline", {}),  # Linked Entities
    (f"{E}?type=Lamp&splitEntities=true&q=p>=0", {}),  # filtered here
    (f"{E}/urn:ngsi-ld:Lamp:1", {}),  # Retrieve Entity
])
async def test_kept_renderings_serve_plain_query_pages_only(
        fed: _Fed, path: str, headers: dict[str, str]) -> None:
    assert await fed.twice(path, headers) == 0


async def test_a_claimed_entity_is_rendered_every_time(fed: _Fed) -> None:
    # 4.3.6.3: an exclusive registration of p hides the others' p: the plan has claims
    other = TestClient(TestServer(create_app(Settings(store="memory:"))))
    await other.start_server()
    try:
        _sources(fed.hub).registrations.put("", registration(
            url_of(other), "urn:ngsi-ld:ContextSourceRegistration:x", mode="exclusive",
            information=[{"entities": [{"type": "Lamp", "id": "urn:ngsi-ld:Lamp:9"}],
                          "propertyNames": ["p"]}]))
        assert await fed.twice(f"{E}?type=Lamp") == 0
    finally:
        await other.close()
