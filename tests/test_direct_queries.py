"""Query Entities answered from the plan of the request (broker.service.direct).

The direct path must answer what the general path answers, byte for byte: a
Hypothesis property draws stores and requests (selectors, pages, options,
Accept, Link, tenants, good and bad) and compares the answer of each path for
the same request.  The other tests check what takes a request off the plan:
a registration, a deleted @context, an unknown tenant, a write.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.app import create_app
from broker.config import Settings
from broker.routes.query import PLANS
from broker.service import direct
from broker.service.caches import AnswerCache
from broker.service.direct import DirectQueries
from broker.state import BROKER

E = "/ngsi-ld/v1/entities"
BASE = "http://broker.example:1026"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
#: what differs between two answers of the same request
PER_ANSWER = {"X-Request-Id", "Date"}  # (titled)


def _link(url: str) -> str:
    return f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


@contextmanager
def general_only() -> Iterator[None]:
    """No plan is kept or made: every request goes the general way."""
    async def no_plan(*_: Any) -> None:
        return None

    with mock.patch.object(DirectQueries, "kept", lambda *_: None), \
            mock.patch.object(DirectQueries, "missed", lambda *_: False), \
            mock.patch.object(DirectQueries, "plan", no_plan):
        yield


async def _answer(client: TestClient, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    # a fresh answer cache: each path computes its own answer
    client.app[BROKER].service.caches.answers = AnswerCache()
    response = await client.get(path, headers=headers)
    kept = tuple(sorted((k, v) for k, v in response.headers.items()
                        if k.title() not in PER_ANSWER))
    return response.status, kept, await response.read()


# -- the property: the same answer either way -------------------------------------------

# requests mostly of the shape and valid, some off it or wrong in one way or another
_types = st.sampled_from(["Lamp", "Car", "Lamp,Car", "Lamp|Car", "Nope"])
_q = st.sampled_from(["p>=2", 'p>=2;s=="on"', 'p<3|s=="off"', "p==1..3", "s", "!s",
                      'rel=="urn:ngsi-ld:Car:1"', 'p>=2;(s=="on"|p==0)', "velocity>1"])
_entities = st.lists(st.tuples(
    st.sampled_from(["Lamp", "Car"]), st.integers(0, 4), st.sampled_from(["on", "off", None]),
), min_size=0, max_size=12)
_good_params = st.fixed_dictionaries({"type": _types}, optional={
    "q": _q,
    "limit": st.sampled_from(["0", "1", "2", "5"]),
    "offset": st.sampled_from(["0", "1", "3"]),
    "options": st.sampled_from(["keyValues", "sysAttrs", "count", "concise,sysAttrs"]),
    "count": st.sampled_from(["true", "false"]),
    "attrs": st.sampled_from(["p", "s,p", "velocity"]),
    "id": st.sampled_from(["urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Car:1,urn:ngsi-ld:Lamp:2"]),
})
_any_params = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["Lamp", "(Lamp", ""]),
    "q": st.sampled_from(["p>", "p>>1", "p>=1"]),
    "limit": st.sampled_from(["1000000", "x", "0"]),
    "offset": st.sampled_from(["-1", "1"]),
    "options": st.sampled_from(["bogus", "keyValues"]),
    "count": st.just("maybe"),
    "orderBy": st.just("p"),
    "bogus": st.just("1"),
    "geometryProperty": st.just("location"),
})
_params = st.one_of(_good_params, _good_params, _good_params, _any_params)
_good_headers = st.fixed_dictionaries({}, optional={
    "Accept": st.sampled_from(["*/*", "application/json", "application/ld+json",
                               "application/ld+json;q=0.5, application/json"]),
    "Link": st.sampled_from([_link(CORE), "hosted"]),
    "NGSILD-Tenant": st.sampled_from(["t1", "T1"]),
})
_any_headers = st.fixed_dictionaries({}, optional={
    "Accept": st.sampled_from(["application/geo+json", "text/plain"]),
    "Link": st.just("<garbage"),
    "NGSILD-Tenant": st.sampled_from(["nope", "t1"]),
    "Fiware-Service": st.sampled_from(["t1", "other"]),  # with NGSILD-Tenant: one or two
})
_headers = st.one_of(_good_headers, _good_headers, _good_headers, _any_headers)


def _entity(n: int, kind: str, p: int, s: str | None) -> dict[str, Any]:
    entity: dict[str, Any] = {"id": f"urn:ngsi-ld:{kind}:{n}", "type": kind,
                              "p": {"type": "Property", "value": p}}
    if s is not None:
        entity["s"] = {"type": "Property", "value": s}
    if n % 3 == 0:
        entity["rel"] = {"type": "Relationship", "object": "urn:ngsi-ld:Car:1"}
    return entity


async def _same_answers(entities: list[tuple[str, int, str | None]],
                        requests: list[tuple[dict[str, str], dict[str, str]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(store=f"sqlite:///{Path(tmp) / 'b.db'}", public_url=BASE))
        async with TestClient(TestServer(app)) as client:
            posted = await client.post("/ngsi-ld/v1/jsonldContexts", json={"@context": {
                "velocity": "https://uri.etsi.org/ngsi-ld/default-context/p"}})
            hosted = _link(BASE + posted.headers["Location"])
            for tenant in ({}, {"NGSILD-Tenant": "t1"}):
                batch = [_entity(n, *e) for n, e in enumerate(entities)]
                if batch:
                    done = await client.post(f"{E[:-9]}/entityOperations/upsert",
                                             data=orjson.dumps(batch), headers={
                                                 **tenant, "Content-Type": "application/json"})
                    assert done.status in (201, 204)
            plans = client.app[PLANS]
            for params, headers in requests:
                if headers.get("Link") == "hosted":
                    headers = {**headers, "Link": hosted}
                path = f"{E}?{urlencode(params)}" if params else E
                with general_only():
                    general = await _answer(client, path, headers)
                hits = plans.hits
                first = await _answer(client, path, headers)  # the plan made (or not)
                again = await _answer(client, path, headers)  # the plan kept (or not)
                assert first == general, (path, headers)
                assert again == general, (path, headers)
                if general[0] == 200 and "orderBy" not in params and "bogus" not in params \
                        and headers.get("Accept") != "application/geo+json":
                    assert plans.hits > hits, (path, headers)  # the second at least was planned
                elif general[0] != 200:
                    assert plans.hits == hits, (path, headers)


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(_entities, st.lists(st.tuples(_params, _headers), min_size=1, max_size=8))
def test_the_planned_answer_is_the_general_answer(
        entities: list[tuple[str, int, str | None]],
        requests: list[tuple[dict[str, str], dict[str, str]]]) -> None:
    asyncio.run(_same_answers(entities, requests))


# -- what takes a request off its plan --------------------------------------------------

@pytest.fixture
async def client(tmp_path: Path) -> Any:
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'b.db'}", public_url=BASE))
    async with TestClient(TestServer(app)) as client:
        for n in range(5):
            assert (await client.post(E, json=_entity(n, "Lamp", n, "on"))).status == 201
        yield client


QUERY = f"{E}?type=Lamp&q=p>=1&limit=2"


async def test_a_write_shows_at_once(client: TestClient) -> None:
    for value in (7, 8):
        for _ in range(3):
            got = await (await client.get(QUERY + "&options=keyValues")).json()
            assert [e["p"] for e in got] == [1 if value == 7 else value - 1, 2]
        patch = {"p": {"type": "Property", "value": value}}
        assert (await client.patch(f"{E}/urn:ngsi-ld:Lamp:1/attrs", json=patch)).status == 204
    assert client.app[PLANS].hits >= 4


async def test_a_bad_q_is_a_problem_every_time(client: TestClient) -> None:
    for _ in range(3):
        refused = await client.get(f"{E}?type=Lamp&q=p>>1")
        assert refused.status == 400
        problem = await refused.json()
        assert problem["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert len(client.app[PLANS]) == 0


async def test_an_unknown_tenant_until_it_exists(client: TestClient) -> None:
    tenant = {"NGSILD-Tenant": "later"}
    for _ in range(2):
        missing = await client.get(QUERY, headers=tenant)
        assert missing.status == 404
        assert (await missing.json())["type"].endswith("/NonexistentTenant")
    assert (await client.post(E, json=_entity(1, "Lamp", 5, None), headers=tenant)).status == 201
    for _ in range(2):
        got = await client.get(QUERY, headers=tenant)
        assert [e["id"] for e in await got.json()] == ["urn:ngsi-ld:Lamp:1"]
        assert got.headers["NGSILD-Tenant"] == "later"
    assert client.app[PLANS].hits == 1


async def test_a_registration_takes_the_tenant_off_its_plans(client: TestClient) -> None:
    for _ in range(2):
        assert (await client.get(QUERY)).status == 200
    assert client.app[PLANS].hits == 1
    registration = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:1", "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Lamp"}]}],
        "endpoint": "http://127.0.0.1:9",  # nobody answers: the answer says so
    }
    created = await client.post("/ngsi-ld/v1/csourceRegistrations", json=registration)
    assert created.status == 201
    got = await client.get(QUERY)
    assert got.status == 200
    assert "NGSILD-Warning" in got.headers  # the source was asked: the general path
    assert client.app[PLANS].hits == 1


async def test_a_deleted_context_ends_the_plan(client: TestClient) -> None:
    posted = await client.post("/ngsi-ld/v1/jsonldContexts", json={"@context": {
        "height": "https://uri.etsi.org/ngsi-ld/default-context/p"}})
    path = posted.headers["Location"]
    link = {"Link": _link(BASE + path)}
    for _ in range(3):
        got = await client.get(f"{E}?type=Lamp&q=height>=1&limit=2&options=keyValues",
                               headers=link)
        assert [e["height"] for e in await got.json()] == [1, 2]
    assert client.app[PLANS].hits == 2
    assert (await client.delete(path)).status == 204
    after = await client.get(f"{E}?type=Lamp&q=height>=1&limit=2", headers=link)
    assert after.status == 504  # the general path: the document is gone
    assert (await after.json())["type"].endswith("/LdContextNotAvailable")
    assert client.app[PLANS].hits == 2


async def test_headers_off_the_shape_go_the_general_way(client: TestClient) -> None:
    for headers in ({"Prefer": "ngsi-ld=1.8"}, {"NGSILD-EntityMap": "urn:x"},
                    {"NGSILD-Snapshot": "urn:ngsi-ld:Snapshot:none"}):
        for _ in range(2):
            with general_only():
                general = await _answer(client, QUERY, headers)
            assert await _answer(client, QUERY, headers) == general
    assert client.app[PLANS].hits == 0
    assert len(client.app[PLANS]) == 0


# -- requests off the shape: tried once, then the general path alone ---------------------

@contextmanager
def counting(client: TestClient) -> Iterator[dict[str, int]]:
    """Counts of the plans tried and of the @context resolutions while inside."""
    counts = {"tried": 0, "resolved": 0}
    plan_of = direct._plan_of
    resolver = client.app[BROKER].service.resolver
    active = resolver.active

    async def tried(*args: Any) -> Any:
        counts["tried"] += 1
        return await plan_of(*args)

    async def resolved(*args: Any) -> Any:
        counts["resolved"] += 1
        return await active(*args)

    with mock.patch.object(direct, "_plan_of", tried), \
            mock.patch.object(resolver, "active", resolved):
        yield counts


async def _register(client: TestClient, tenant: dict[str, str]) -> str:
    registration = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:off", "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Lamp"}]}],
        "endpoint": "http://127.0.0.1:9",  # nobody answers: the answer says so
    }
    created = await client.post("/ngsi-ld/v1/csourceRegistrations", json=registration,
                                headers=tenant)
    assert created.status == 201
    return str(created.headers["Location"])


@pytest.mark.parametrize(("query", "headers"), [
    (QUERY, {"Accept": "application/geo+json"}),  # 6.3.15: no GeoJSON plan
    (QUERY, {"NGSILD-Tenant": "t1", "Fiware-Service": "t2"}),  # two tenants: 400
    (QUERY, {"NGSILD-Tenant": "served"}),  # a tenant context sources serve
])
async def test_a_request_off_the_shape_is_resolved_once(
        client: TestClient, query: str, headers: dict[str, str]) -> None:
    car = {"id": "urn:ngsi-ld:Car:1", "type": "Car", "p": {"type": "Property", "value": 3}}
    assert (await client.post(E, json=car)).status == 201
    if headers.get("NGSILD-Tenant") == "served":
        assert (await client.post(E, json=car, headers=headers)).status == 201
        await _register(client, headers)
    with general_only(), counting(client) as general_counts:
        general = await _answer(client, query, headers)
    with counting(client) as counts:
        first = await _answer(client, query, headers)
        assert counts["tried"] == 1
        resolved_first = counts["resolved"]
        for _ in range(3):
            assert await _answer(client, query, headers) == general
        assert first == general
    assert counts["tried"] == 1  # then never again
    # from the second request on, no more resolutions than the general path's alone
    assert counts["resolved"] - resolved_first == 3 * general_counts["resolved"]
    assert client.app[PLANS].hits == 0


async def test_a_request_off_the_shape_is_tried_again_when_its_sources_go(
        client: TestClient) -> None:
    tenant = {"NGSILD-Tenant": "served"}
    assert (await client.post(E, json=_entity(1, "Lamp", 5, "on"), headers=tenant)).status == 201
    location = await _register(client, tenant)
    with counting(client) as counts:
        for _ in range(2):
            got = await client.get(QUERY, headers=tenant)
            assert "NGSILD-Warning" in got.headers  # the source was asked: the general path
        assert counts["tried"] == 1
        assert (await client.delete(location, headers=tenant)).status == 204
        for _ in range(2):
            got = await client.get(QUERY, headers=tenant)
            assert [e["id"] for e in await got.json()] == ["urn:ngsi-ld:Lamp:1"]
            assert "NGSILD-Warning" not in got.headers
        assert counts["tried"] == 2  # tried again, and planned
    assert client.app[PLANS].hits == 1


async def test_a_request_off_the_shape_is_tried_again_when_its_context_moves(
        client: TestClient) -> None:
    posted = await client.post("/ngsi-ld/v1/jsonldContexts", json={"@context": {
        "height": "https://uri.etsi.org/ngsi-ld/default-context/p"}})
    link = {"Link": _link(BASE + posted.headers["Location"]), "Accept": "application/geo+json"}
    with counting(client) as counts:
        for _ in range(2):
            assert (await client.get(f"{E}?type=Lamp&q=height>=1", headers=link)).status == 200
        assert counts["tried"] == 1
        assert (await client.delete(posted.headers["Location"])).status == 204
        after = await client.get(f"{E}?type=Lamp&q=height>=1", headers=link)
        assert after.status == 504  # the general path: the document is gone
        assert counts["tried"] == 2
