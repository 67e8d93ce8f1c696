"""Retrieve Entity answered again from the kept answer of the same request (broker.service.hot).

Every test reads an entity twice or more with the same request, so that the
later reads are the kept answer, and checks that what a user sees is what the
full path answers: the headers, the tenant, a write right after, credentials.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from auth_issuer import AUDIENCE, Issuer

from broker.app import create_app
from broker.config import Settings
from broker.routes.entities import HOT

E = "/ngsi-ld/v1/entities"
CAR = {"id": "urn:ngsi-ld:Car:1", "type": "Car", "speed": {"type": "Property", "value": 1}}
URL = f"{E}/urn:ngsi-ld:Car:1"
#: what differs between two answers of the same request
PER_ANSWER = {"X-Request-Id", "Date"}  # (titled)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(
            create_app(Settings(store=f"sqlite:///{tmp_path / 'b.db'}")))) as client:
        yield client


def _headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.title() not in PER_ANSWER}


@pytest.mark.parametrize(("headers", "kept"), [
    ({}, 1), ({"Accept": "application/ld+json"}, 1), ({"NGSILD-Tenant": "t1"}, 1),
    # a version preference is not the plain view of the render cache: never kept
    ({"Prefer": "ngsi-ld=1.8"}, 0),
    ({"Link": '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; '
              'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}, 1),
])
async def test_a_kept_answer_is_the_answer_headers_included(
        client: TestClient, headers: dict[str, str], kept: int) -> None:
    tenant = {"NGSILD-Tenant": headers["NGSILD-Tenant"]} if "NGSILD-Tenant" in headers else {}
    assert (await client.post(E, json=CAR, headers=tenant)).status == 201
    answers = []
    for _ in range(3):
        response = await client.get(URL, headers=headers)
        assert response.status == 200
        answers.append((_headers(response), await response.read()))
    assert client.app[HOT].hits == kept  # the third (the second read put it)
    assert answers[0] == answers[1] == answers[2]
    assert "X-Request-Id" in response.headers
    if "NGSILD-Tenant" in headers:
        assert response.headers["NGSILD-Tenant"] == "t1"


async def test_a_write_shows_at_once(client: TestClient) -> None:
    assert (await client.post(E, json=CAR)).status == 201
    for value in (2, 3):
        for _ in range(3):
            assert (await (await client.get(URL)).json())["speed"]["value"] == value - 1
        patch = {"value": value}
        assert (await client.patch(f"{URL}/attrs/speed", json=patch)).status == 204
    assert (await (await client.get(URL)).json())["speed"]["value"] == 3
    assert (await client.delete(URL)).status == 204
    assert (await client.get(URL)).status == 404


async def test_tenants_are_apart(client: TestClient) -> None:
    for tenant, speed in (("a", 1), ("b", 2)):
        car = {**CAR, "speed": {"type": "Property", "value": speed}}
        assert (await client.post(E, json=car, headers={"NGSILD-Tenant": tenant})).status == 201
    for _ in range(3):
        for tenant, speed in (("a", 1), ("b", 2)):
            got = await client.get(URL, headers={"NGSILD-Tenant": tenant})
            assert (await got.json())["speed"]["value"] == speed
        assert (await client.get(URL, headers={"NGSILD-Tenant": "c"})).status == 404
        assert (await client.get(URL)).status == 404


async def test_a_query_string_is_never_answered_from_a_kept_answer(client: TestClient) -> None:
    assert (await client.post(E, json=CAR)).status == 201
    for _ in range(3):
        assert (await client.get(URL)).status == 200
        got = await (await client.get(URL, params={"options": "keyValues"})).json()
        assert got["speed"] == 1
        assert (await client.get(URL, params={"bogus": "1"})).status == 400


async def test_credentials_are_checked_on_every_read(tmp_path: Path) -> None:
    issuer = Issuer()
    await issuer.start()
    keys = tmp_path / "api-keys.json"
    key = "reader-key-123456"
    keys.write_bytes(orjson.dumps({"keys": [
        {"name": "reader", "sha256": hashlib.sha256(key.encode()).hexdigest(),
         "roles": ["city:writer"]}]}))
    settings = Settings(store=f"sqlite:///{tmp_path / 'b.db'}", auth="oidc",
                        auth_issuer=issuer.url, auth_audience=AUDIENCE, api_keys=str(keys))
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            city = {"NGSILD-Tenant": "city", "X-API-Key": key}
            assert (await client.post(E, json=CAR, headers=city)).status == 201
            for _ in range(3):
                assert (await client.get(URL, headers=city)).status == 200
            assert client.app[HOT].hits == 1
            assert (await client.get(URL, headers={"NGSILD-Tenant": "city"})).status == 401
            other = {"NGSILD-Tenant": "town", "X-API-Key": key}
            assert (await client.get(URL, headers=other)).status == 403
            reader = issuer.token(["town:reader"])
            for _ in range(2):
                refused = await client.get(URL, headers={
                    "NGSILD-Tenant": "city", "Authorization": f"Bearer {reader}"})
                assert refused.status == 403
    finally:
        await issuer.close()


async def test_large_answers_are_not_kept(client: TestClient) -> None:
    big = {**CAR, "note": {"type": "Property", "value": "x" * 20_000}}
    assert (await client.post(E, json=big)).status == 201
    for _ in range(3):
        assert (await (await client.get(URL)).json())["note"]["value"] == "x" * 20_000
    assert client.app[HOT].hits == 0


async def test_a_write_through_another_store_on_the_file_shows_at_once(tmp_path: Path) -> None:
    """Two brokers on one file (as two processes): the other's write ends the kept answer."""
    settings = Settings(store=f"sqlite:///{tmp_path / 'b.db'}")
    async with TestClient(TestServer(create_app(settings))) as reader, \
            TestClient(TestServer(create_app(settings))) as writer:
        assert (await writer.post(E, json=CAR)).status == 201
        for value in (2, 3, 4):
            for _ in range(3):
                got = await (await reader.get(URL)).json()
                assert got["speed"]["value"] == value - 1
            patch = {"value": value}
            assert (await writer.patch(f"{URL}/attrs/speed", json=patch)).status == 204
        assert (await (await reader.get(URL)).json())["speed"]["value"] == 4
        assert reader.app[HOT].hits >= 3
        assert (await writer.delete(URL)).status == 204
        assert (await reader.get(URL)).status == 404


async def test_the_edge_answers_for_kept_answers_too(tmp_path: Path) -> None:
    """Request ids (echoed or new on every answer), CORS and the metrics of a kept answer."""
    settings = Settings(store=f"sqlite:///{tmp_path / 'b.db'}", cors_origin="https://app.test")
    async with TestClient(TestServer(create_app(settings))) as client:
        assert (await client.post(E, json=CAR)).status == 201
        ids = set()
        for _ in range(4):
            response = await client.get(URL)
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "https://app.test"
            assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]
            ids.add(response.headers["X-Request-Id"])
        assert len(ids) == 4
        for _ in range(3):
            echoed = await client.get(URL, headers={"X-Request-Id": "mine-1"})
            assert echoed.headers["X-Request-Id"] == "mine-1"
        # the third and fourth of each request (a request id is part of the request)
        assert client.app[HOT].hits == 2 + 2
        metrics = await (await client.get("/metrics")).text()
        route = f'method="GET",route="{E}/{{entityId}}",status="200"'
        assert f"ngsi_ld_http_requests_total{{{route}}} 7" in metrics
        labels = f'method="GET",route="{E}/{{entityId}}"'
        assert f"ngsi_ld_http_request_duration_seconds_count{{{labels}}} 7" in metrics


async def test_a_context_dropped_since_ends_the_kept_answer(tmp_path: Path) -> None:
    """A kept answer compacted with a hosted @context is not answered once it is deleted."""
    base = "http://broker.example:1026"
    settings = Settings(store=f"sqlite:///{tmp_path / 'b.db'}", public_url=base)
    async with TestClient(TestServer(create_app(settings))) as client:
        assert (await client.post(E, json=CAR)).status == 201
        velocity = {"velocity": "https://uri.etsi.org/ngsi-ld/default-context/speed"}
        posted = await client.post("/ngsi-ld/v1/jsonldContexts", json={"@context": velocity})
        assert posted.status == 201
        path = posted.headers["Location"]
        link = {"Link": f'<{base}{path}>; rel="http://www.w3.org/ns/json-ld#context"; '
                        'type="application/ld+json"'}
        for _ in range(3):
            got = await client.get(URL, headers=link)
            assert (await got.json())["velocity"]["value"] == 1
        assert client.app[HOT].hits == 1
        assert (await client.delete(path)).status == 204
        after = await client.get(URL, headers=link)
        assert client.app[HOT].hits == 1
        assert after.status == 504  # the full path: the document is gone
        assert (await after.json())["type"].endswith("/LdContextNotAvailable")


async def test_an_evicted_context_is_compiled_again_before_a_kept_answer_counts(
        tmp_path: Path) -> None:
    """With room for one compiled @context, reading with another evicts the first: the
    kept answer of the first is then not trusted until it is compiled again."""
    settings = Settings(store=f"sqlite:///{tmp_path / 'b.db'}", context_cache_size=1)
    async with TestClient(TestServer(create_app(settings))) as client:
        assert (await client.post(E, json=CAR)).status == 201
        core = await client.get(URL)  # the core context: compiled, then evicted below
        for _ in range(2):
            assert (await client.get(URL)).status == 200
        assert client.app[HOT].hits == 1
        other = {"Link": '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld>; '
                         'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}
        assert (await client.get(URL, headers=other)).status == 200
        again = await client.get(URL)
        assert client.app[HOT].hits == 1  # not answered from the kept answer
        assert await again.read() == await core.read()
        for _ in range(3):  # rendered with the new compilation, kept again, answered twice
            assert (await client.get(URL)).status == 200
        assert client.app[HOT].hits == 3
