"""Distributed operations through the Sources seam: a hub broker forwarding to real and
mock context sources on loopback (4.3.6, 6.3.17, 6.3.18), registrations held in memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from broker.app import BROKER, create_app
from broker.config import Settings
from broker.federation import FederatedSources, MemoryRegistrations
from ngsi_ld.federation import Registration, parse_registration

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
JSON = {"Content-Type": "application/json"}
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def expand(term: str) -> str:
    return term if ":" in term else VOCAB + term


def registration(endpoint: str, rid: str = "urn:ngsi-ld:ContextSourceRegistration:r1",
                 **members: Any) -> Registration:
    body: dict[str, Any] = {
        "id": rid, "type": "ContextSourceRegistration", "endpoint": endpoint,
        "information": [{"entities": [{"type": "Lamp"}]}],
    }
    body.update(members)
    return parse_registration(body, expand, datetime.now(UTC))


@dataclass
class Federation:
    hub: TestClient
    registry: MemoryRegistrations
    servers: list[TestClient | TestServer] = field(default_factory=list)

    def register(self, reg: Registration, tenant: str = "") -> None:
        self.registry.put(tenant, reg)

    async def source(self) -> TestClient:
        settings = Settings(store="memory:", outbound_allow="127.0.0.0/8")
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        self.servers.append(client)
        return client

    async def mock(self, handler: Callable[[web.Request], Any]) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        server = TestServer(app)
        await server.start_server()
        self.servers.append(server)
        return str(server.make_url("")).rstrip("/")


async def started_hub(settings: Settings) -> tuple[TestClient, MemoryRegistrations]:
    """A hub broker, started, whose registrations are held in memory (tests put them)."""
    app = create_app(settings)
    registry = MemoryRegistrations()
    sources = app[BROKER].service.sources
    assert isinstance(sources, FederatedSources)
    sources.registrations = registry
    hub = TestClient(TestServer(app))
    await hub.start_server()
    return hub, registry


@pytest.fixture
async def fed() -> AsyncIterator[Federation]:
    # a source's default timeout far above what a loaded test machine takes to answer on
    # loopback (2 s lost answers under a load of 10); tests of the timeout set their own
    hub, registry = await started_hub(
        Settings(store="memory:", forward_timeout=10.0, outbound_allow="127.0.0.0/8"))
    federation = Federation(hub, registry)
    yield federation
    for server in federation.servers:
        await server.close()
    await hub.close()


def lamp(n: int, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp",
            **{k: {"type": "Property", "value": v} for k, v in attrs.items()}}


def url_of(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_query_merges_hub_and_source_and_local_true_stays_local(fed: Federation) -> None:
    source = await fed.source()
    await source.post("/ngsi-ld/v1/entities", json=lamp(2, power=5), headers=JSON)
    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(1, power=1), headers=JSON)
    fed.register(registration(url_of(source)))
    resp = await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp&count=true")
    body = await resp.json()
    assert resp.status == 200, body
    assert [e["id"] for e in body] == ["urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Lamp:2"]
    assert body[1]["power"]["value"] == 5
    assert resp.headers["NGSILD-Results-Count"] == "2"
    assert "NGSILD-Warning" not in resp.headers
    local = await (await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp&local=true")).json()
    assert [e["id"] for e in local] == ["urn:ngsi-ld:Lamp:1"]


async def test_pages_of_a_distributed_query_follow_the_merged_id_order(
        fed: Federation) -> None:
    source = await fed.source()
    for n in range(0, 10, 2):
        await source.post("/ngsi-ld/v1/entities", json=lamp(n), headers=JSON)
    for n in range(1, 10, 2):
        await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(n), headers=JSON)
    fed.register(registration(url_of(source)))
    seen = []
    for offset in range(0, 10, 3):
        page = await fed.hub.get(f"/ngsi-ld/v1/entities?type=Lamp&limit=3&offset={offset}")
        seen += [e["id"] for e in await page.json()]
        assert ('rel="next"' in page.headers.get("Link", "")) == (offset + 3 < 10)
    assert seen == sorted(f"urn:ngsi-ld:Lamp:{n}" for n in range(10))


async def test_retrieve_merges_the_same_entity_newest_observation_wins(fed: Federation) -> None:
    source = await fed.source()
    old = {"type": "Property", "value": 1, "observedAt": "2020-01-01T00:00:00Z"}
    new = {"type": "Property", "value": 2, "observedAt": "2024-01-01T00:00:00Z"}
    await fed.hub.post("/ngsi-ld/v1/entities", headers=JSON,
                       json={**lamp(7, colour="red"), "power": old})
    await source.post("/ngsi-ld/v1/entities", headers=JSON,
                      json={**lamp(7, height=9), "power": new})
    fed.register(registration(url_of(source)))
    body = await (await fed.hub.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:7")).json()
    assert body["power"]["value"] == 2
    assert body["colour"]["value"] == "red" and body["height"]["value"] == 9


async def test_an_entity_only_a_source_holds_is_retrieved(fed: Federation) -> None:
    source = await fed.source()
    await source.post("/ngsi-ld/v1/entities", json=lamp(3, power=3), headers=JSON)
    fed.register(registration(url_of(source)))
    resp = await fed.hub.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:3")
    assert resp.status == 200
    assert (await resp.json())["power"]["value"] == 3
    missing = await fed.hub.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:404")
    assert missing.status == 404 and "NGSILD-Warning" not in missing.headers


async def test_a_slow_source_costs_its_timeout_and_a_199_warning(fed: Federation) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response([])

    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(1), headers=JSON)
    fed.register(registration(await fed.mock(slow), management={"timeout": 300}))
    started = time.monotonic()
    resp = await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp")
    elapsed = time.monotonic() - started
    assert resp.status == 200
    assert [e["id"] for e in await resp.json()] == ["urn:ngsi-ld:Lamp:1"]
    assert resp.headers["NGSILD-Warning"].startswith("199 ")
    assert 0.3 <= elapsed < 10  # its 300 ms, not the default 10 s nor the source's 30 s


async def test_a_failing_source_is_a_299_warning_and_a_404_stays_404(fed: Federation) -> None:
    async def failing(request: web.Request) -> web.Response:
        return web.json_response({"type": "x", "title": "down"}, status=500)

    fed.register(registration(await fed.mock(failing)))
    resp = await fed.hub.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:1")
    assert resp.status == 404
    assert resp.headers["NGSILD-Warning"].startswith("299 ")


async def test_a_dead_source_and_nonsense_are_warnings(fed: Federation) -> None:
    async def nonsense(request: web.Request) -> web.Response:
        return web.Response(body=b"<html>", content_type="text/html")

    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(1), headers=JSON)
    fed.register(registration("http://127.0.0.1:9", "urn:ngsi-ld:ContextSourceRegistration:dead"))
    fed.register(registration(await fed.mock(nonsense),
                              "urn:ngsi-ld:ContextSourceRegistration:html"))
    resp = await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp")
    assert resp.status == 200 and len(await resp.json()) == 1
    codes = sorted(w[:3] for w in resp.headers.getall("NGSILD-Warning"))
    assert codes == ["111", "199"]


async def test_a_json_ld_answer_is_expanded_with_its_own_context(fed: Federation) -> None:
    async def jsonld(request: web.Request) -> web.Response:
        entity = {"id": "urn:ngsi-ld:Lamp:9", "type": "Lamp",
                  "lum": {"type": "Property", "value": 40},
                  "@context": [{"lum": "https://example.org/luminosity"}, CORE]}
        return web.Response(body=orjson.dumps([entity]), content_type="application/ld+json")

    fed.register(registration(await fed.mock(jsonld)))
    body = await (await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp")).json()
    assert body[0]["https://example.org/luminosity"]["value"] == 40


async def test_forwarded_requests_carry_via_tenant_and_context_source_info(
        fed: Federation) -> None:
    seen: list[web.Request] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response([])

    fed.register(registration(await fed.mock(record), tenant="district",
                              contextSourceInfo=[{"key": "X-Auth", "value": "k1"}],
                              management={"localOnly": True}))
    await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp&q=power>3")
    (request,) = seen
    assert request.path == "/ngsi-ld/v1/entities"
    assert request.query["type"] == "Lamp" and request.query["q"] == "power>3"
    assert request.query["local"] == "true"
    assert request.headers["NGSILD-Tenant"] == "district"
    assert request.headers["X-Auth"] == "k1"
    assert request.headers["Via"].endswith(fed_alias(fed))


def fed_alias(fed: Federation) -> str:
    sources = fed.hub.server.app[BROKER].service.sources
    assert isinstance(sources, FederatedSources)
    return sources.alias("")


async def test_a_request_that_comes_back_is_served_locally_or_508(fed: Federation) -> None:
    calls: list[str] = []

    async def record(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response([])

    endpoint = await fed.mock(record)
    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(1), headers=JSON)
    fed.register(registration(endpoint))
    via = {"Via": f"1.1 {fed_alias(fed)}"}
    resp = await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp", headers=via)
    assert resp.status == 200 and len(await resp.json()) == 1 and calls == []
    fed.registry.remove("", "urn:ngsi-ld:ContextSourceRegistration:r1")
    fed.register(registration(endpoint, mode="redirect",
                              information=[{"entities": [{"type": "Lamp"}]}],
                              operations=["redirectionOps"]))
    looped = await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp", headers=via)
    assert looped.status == 508
    assert (await looped.json())["type"].endswith("/LoopDetected")
    assert calls == []


async def test_writes_are_forwarded_where_the_registration_allows(fed: Federation) -> None:
    source = await fed.source()
    fed.register(registration(url_of(source), operations=["redirectionOps"],
                              information=[{"entities": [{"type": "Lamp"}]}]))
    created = await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(5, power=1), headers=JSON)
    assert created.status == 201
    patched = await fed.hub.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:5/attrs",
                                  json={"power": {"type": "Property", "value": 8}},
                                  headers=JSON)
    assert patched.status == 204
    at_source = await (await source.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:5")).json()
    assert at_source["power"]["value"] == 8
    deleted = await fed.hub.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:5")
    assert deleted.status == 204
    assert (await source.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:5")).status == 404


async def test_a_write_both_parts_refuse_is_207_listing_both(fed: Federation) -> None:
    source = await fed.source()
    await source.post("/ngsi-ld/v1/entities", json=lamp(6), headers=JSON)
    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(6), headers=JSON)
    fed.register(registration(url_of(source), operations=["redirectionOps"]))
    resp = await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(6), headers=JSON)
    body = await resp.json()
    assert resp.status == 207, body
    assert [e["error"]["status"] for e in body["errors"]] == [409, 409]
    assert body["errors"][1]["registrationId"] == "urn:ngsi-ld:ContextSourceRegistration:r1"


async def test_batches_are_forwarded_one_request_per_source(fed: Federation) -> None:
    source = await fed.source()
    fed.register(registration(url_of(source), operations=["redirectionOps", "createBatch",
                                                          "upsertBatch", "deleteBatch"],
                              information=[{"entities": [{"type": "Lamp"}]}]))
    created = await fed.hub.post("/ngsi-ld/v1/entityOperations/create", headers=JSON,
                                 json=[lamp(1, power=1), lamp(2, power=2)])
    assert created.status == 201, await created.text()
    assert sorted(await created.json()) == ["urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Lamp:2"]
    at_source = await (await source.get("/ngsi-ld/v1/entities?type=Lamp&local=true")).json()
    assert [e["id"] for e in at_source] == ["urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Lamp:2"]
    again = await fed.hub.post("/ngsi-ld/v1/entityOperations/create", headers=JSON,
                               json=[lamp(1), lamp(3)])
    body = await again.json()
    assert again.status == 207, body
    refused = [e for e in body["errors"] if e.get("registrationId")]
    assert [e["entityId"] for e in refused] == ["urn:ngsi-ld:Lamp:1"]
    deleted = await fed.hub.post("/ngsi-ld/v1/entityOperations/delete", headers=JSON,
                                 json=["urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Lamp:2"])
    assert deleted.status == 204, await deleted.text()
    left = await (await source.get("/ngsi-ld/v1/entities?type=Lamp&local=true")).json()
    assert [e["id"] for e in left] == ["urn:ngsi-ld:Lamp:3"]


async def test_a_purge_is_forwarded_with_its_selectors(fed: Federation) -> None:
    source = await fed.source()
    await source.post("/ngsi-ld/v1/entities", json=lamp(1, power=1), headers=JSON)
    await source.post("/ngsi-ld/v1/entities", json=lamp(2, power=9), headers=JSON)
    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(3, power=9), headers=JSON)
    fed.register(registration(url_of(source), operations=["redirectionOps"]))
    resp = await fed.hub.delete("/ngsi-ld/v1/entities?type=Lamp&q=power>5")
    assert resp.status == 204, await resp.text()
    left = await (await source.get("/ngsi-ld/v1/entities?type=Lamp")).json()
    assert [e["id"] for e in left] == ["urn:ngsi-ld:Lamp:1"]
    here = await (await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp&local=true")).json()
    assert here == []


async def test_a_source_without_pick_still_gives_later_pages(fed: Federation) -> None:
    entities = [lamp(n) for n in range(0, 10, 2)]

    async def no_pick(request: web.Request) -> web.Response:
        if "pick" in request.query:
            return web.json_response({"type": "https://uri.etsi.org/ngsi-ld/errors/"
                                      "BadRequestData", "title": "pick"}, status=400)
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", 20))
        return web.json_response(entities[offset:offset + limit])

    for n in range(1, 10, 2):
        await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(n), headers=JSON)
    fed.register(registration(await fed.mock(no_pick)))
    page = await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp&limit=3&offset=3")
    assert [e["id"] for e in await page.json()] == [f"urn:ngsi-ld:Lamp:{n}" for n in (3, 4, 5)]
    assert "NGSILD-Warning" not in page.headers


async def test_a_snapshot_freezes_what_sources_hold_too(fed: Federation) -> None:
    source = await fed.source()
    for n in range(3):
        await source.post("/ngsi-ld/v1/entities", json=lamp(n, power=n * 5), headers=JSON)
    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(9, power=50), headers=JSON)
    fed.register(registration(url_of(source)))
    resp = await fed.hub.post("/ngsi-ld/v1/snapshots", headers=JSON, json={
        "type": "Snapshot",
        "snapshotQueries": [{"type": "Query", "entities": [{"type": "Lamp"}], "q": "power>4"}]})
    assert resp.status == 201
    location = resp.headers["Location"]
    status = {}
    for _ in range(100):
        status = await (await fed.hub.get(location)).json()
        if status.get("snapshotStatus") != "preparing":
            break
        await asyncio.sleep(0.02)
    assert status["snapshotStatus"] == "success"
    frozen = await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp&local=true",
                               headers={"NGSILD-Snapshot": status["id"]})
    assert [e["id"] for e in await frozen.json()] == [
        "urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Lamp:2", "urn:ngsi-ld:Lamp:9"]


async def test_the_outbound_policy_keeps_forwarded_requests_off_loopback() -> None:
    """Without --outbound-allow, a registration naming a loopback source (by address or
    by name) is never called: the hub answers its own data with a warning."""
    calls: list[str] = []

    async def source(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response([lamp(2)])

    mock = web.Application()
    mock.router.add_route("*", "/{tail:.*}", source)
    server = TestServer(mock)
    await server.start_server()
    hub, registry = await started_hub(
        Settings(store="memory:", forward_timeout=2.0))  # the default policy
    try:
        await hub.post("/ngsi-ld/v1/entities", json=lamp(1), headers=JSON)
        port = server.port
        for n, endpoint in enumerate((f"http://127.0.0.1:{port}", f"http://localhost:{port}")):
            registry.put("", registration(endpoint, f"urn:ngsi-ld:ContextSourceRegistration:{n}"))
        resp = await hub.get("/ngsi-ld/v1/entities?type=Lamp")
        assert resp.status == 200
        assert [e["id"] for e in await resp.json()] == ["urn:ngsi-ld:Lamp:1"]
        assert len(resp.headers.getall("NGSILD-Warning")) == 2
        assert calls == []
    finally:
        await hub.close()
        await server.close()
