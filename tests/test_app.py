"""The application edge: errors, request ids, metrics, health, CORS, multi-tenancy switch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from broker.app import BROKER, add_route, create_app
from broker.config import Settings
from broker.logs import quiet_malformed_requests

JSON = {"Content-Type": "application/json"}


async def _client(settings: Settings) -> TestClient:
    app = create_app(settings)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    async def deep(request: web.Request) -> web.Response:
        raise RecursionError("maximum recursion depth exceeded")

    add_route(app, "GET", "/boom", boom)
    add_route(app, "GET", "/deep", deep)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    c = await _client(Settings(store="memory:"))
    yield c
    await c.close()


async def test_unexpected_error_is_500_without_trace_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/boom", headers={"X-Request-Id": "req-42"})
    body = await resp.json()
    assert resp.status == 500
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/InternalError"
    assert "secret" not in body["detail"] and "req-42" in body["detail"]
    assert resp.headers["X-Request-Id"] == "req-42"
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


async def test_input_nested_past_python_recursion_is_400_not_500(client: TestClient) -> None:
    resp = await client.get("/deep")
    body = await resp.json()
    assert resp.status == 400 and body["type"].endswith("/BadRequestData")


async def test_a_malformed_request_is_400_and_one_warning_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    quiet_malformed_requests()
    with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
        status, _ = await _raw_request(
            client, b"GET /ngsi-ld/v1/entities?type=T HTTP/1.1\r\nHost: x\r\n"
            b"Link: \x0e\r\nConnection: close\r\n\r\n")
    assert status == 400
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.levelname for r in records] == ["WARNING"]
    assert "malformed HTTP request" in records[0].getMessage()
    assert "Invalid header value char" in records[0].getMessage()
    assert records[0].exc_info is None


async def test_a_query_naming_hundreds_of_ids_fits_in_the_request_line(
    client: TestClient,
) -> None:
    ids = ",".join(f"urn:ngsi-ld:Streetlight:district-{n:05d}" for n in range(500))
    resp = await client.get(f"/ngsi-ld/v1/entities?type=Streetlight&id={ids}")  # ~20 kB line
    assert resp.status == 200 and await resp.json() == []


async def test_requests_are_answered_while_a_large_context_compiles(
    client: TestClient,
) -> None:
    context = {f"term{n}": f"https://example.org/vocab/term{n}" for n in range(20_000)}
    entity = {"id": "urn:ngsi-ld:T:big-context", "type": "T", "term1": 1, "@context": context}
    finished: list[str] = []

    async def create() -> None:
        resp = await client.post("/ngsi-ld/v1/entities", data=orjson.dumps(entity),
                                 headers={"Content-Type": "application/ld+json"})
        assert resp.status == 201, await resp.text()
        finished.append("create")

    async def version() -> None:
        await asyncio.sleep(0.05)  # the compilation has started
        resp = await client.get("/version")
        assert resp.status == 200
        finished.append("version")

    await asyncio.gather(create(), version())
    assert finished == ["version", "create"]  # compiling 20,000 terms took ~400 ms


async def test_unknown_path_and_method_are_problem_details(client: TestClient) -> None:
    resp = await client.get("/ngsi-ld/v1/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["type"].endswith("/ResourceNotFound")
    resp = await client.request("PATCH", "/version")
    assert resp.status == 405 and "status" in await resp.json()


async def test_health_and_metrics(client: TestClient) -> None:
    resp = await client.get("/health")
    assert resp.status == 200 and (await resp.json())["status"] == "pass"
    await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:X:1")
    text = await (await client.get("/metrics")).text()
    assert 'route="/ngsi-ld/v1/entities/{entityId}",status="404"} 1' in text
    assert "ngsi_ld_http_request_duration_seconds_bucket" in text


async def test_version_names_store_and_core_context(client: TestClient) -> None:
    body = await (await client.get("/ngsi-ld/ex/v1/version")).json()
    assert body["store"] == "memory"
    assert body["coreContext"].endswith("ngsi-ld-core-context-v1.8.jsonld")
    assert body["uptime"] >= 0


async def test_configured_core_context_version_applies() -> None:
    c = await _client(Settings(store="memory:", core_context_version="1.6"))
    try:
        body = await (await c.get("/version")).json()
        assert body["coreContext"].endswith("v1.6.jsonld")
        resp = await c.post("/ngsi-ld/v1/entities", json={"id": "urn:a:1", "type": "T"})
        assert resp.status == 201
        resp = await c.get("/ngsi-ld/v1/entities/urn:a:1")
        assert "v1.6.jsonld" in resp.headers["Link"]
    finally:
        await c.close()


async def test_cors_headers_and_preflight() -> None:
    c = await _client(Settings(store="memory:", cors_origin="*"))
    try:
        resp = await c.options("/ngsi-ld/v1/entities")
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "Link" in resp.headers["Access-Control-Expose-Headers"]
    finally:
        await c.close()


async def test_paths_no_route_matches_pass_the_edge(client: TestClient) -> None:
    """404 and 405 come from the last, catch-all route: through the edge like the others."""
    resp = await client.request("PATCH", "/version")
    assert resp.status == 405 and "X-Request-Id" in resp.headers
    assert {m.strip() for m in resp.headers["Allow"].split(",")} == {"GET", "OPTIONS"}
    resp = await client.get("/nowhere", headers={"NGSILD-Tenant": "t"})
    assert resp.status == 404 and resp.headers["NGSILD-Tenant"] == "t"


    async def chunks() -> AsyncIterator[bytes]:
        yield b"{}"

    # 6.3.4: no Content-Length, a bare 411 whatever the path
    assert (await client.post("/ngsi-ld/v1/nowhere", data=chunks())).status == 411
    metrics = await (await client.get("/metrics")).text()
    assert 'method="GET",route="unmatched",status="404"' in metrics
    assert 'method="PATCH",route="unmatched",status="405"' in metrics


async def test_a_trailing_slash_answers_as_its_path_and_is_tried_last(
        client: TestClient) -> None:
    """Every path also answers with a trailing slash (IoT Agents post so), counted under
    the twin's own route; the twins are registered after every other route, so that a
    request of a path without one does not try them first (issue 19)."""
    entity = {"id": "urn:ngsi-ld:T:1", "type": "T", "p": {"type": "Property", "value": 1}}
    e = "/ngsi-ld/v1/entities"
    assert (await client.post(e + "/", json=entity)).status == 201
    patch = {"type": "Property", "value": 2}
    assert (await client.patch(e + "/urn:ngsi-ld:T:1/attrs/p/", json=patch)).status == 204
    for path in (e + "/urn:ngsi-ld:T:1", e + "/urn:ngsi-ld:T:1/"):
        got = await client.get(path, headers={"Accept": "application/json"})
        assert (await got.json())["p"]["value"] == 2
    assert [x["id"] for x in await (await client.get(e + "/?type=T")).json()] == [entity["id"]]
    options = await client.options(e + "/urn:ngsi-ld:T:1/attrs/")
    assert options.status == 204 and "PATCH" in options.headers["Allow"]
    assert (await client.delete(e + "/urn:ngsi-ld:T:1/")).status == 204
    metrics = await (await client.get("/metrics")).text()
    assert f'method="POST",route="{e}/",status="201"' in metrics
    assert f'method="PATCH",route="{e}/{{entityId}}/attrs/{{attrId}}/",status="204"' in metrics
    assert f'method="GET",route="{e}/{{entityId}}",status="200"' in metrics
    assert f'method="GET",route="{e}/{{entityId}}/",status="200"' in metrics
    order = [r.canonical for r in client.app.router.resources()]
    twins = [n for n, path in enumerate(order) if path.endswith("/") and path.rstrip("/") in order]
    plain = [n for n, path in enumerate(order) if path.startswith("/ngsi-ld/")
             and not path.endswith("/")]
    assert twins and max(plain) < min(twins)


async def test_a_cors_preflight_of_any_path_is_204() -> None:
    c = await _client(Settings(store="memory:", cors_origin="*"))
    try:
        for path in ("/nowhere", "/explorer"):
            resp = await c.options(path)
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert (await c.get("/nowhere")).status == 404
    finally:
        await c.close()


async def test_without_multi_tenancy_a_tenant_is_501() -> None:
    c = await _client(Settings(store="memory:", multi_tenancy=False))
    try:
        resp = await c.get("/ngsi-ld/v1/entities/urn:a:1", headers={"NGSILD-Tenant": "x"})
        assert resp.status == 501
        assert (await resp.json())["type"].endswith("/NoMultiTenantSupport")
    finally:
        await c.close()


async def test_invalid_tenant_name_is_400(client: TestClient) -> None:
    resp = await client.post(
        "/ngsi-ld/v1/entities",
        json={"id": "urn:a:1", "type": "T"},
        headers={"NGSILD-Tenant": "../etc"},
    )
    assert resp.status == 400


async def test_change_events_are_published_once_per_write(client: TestClient) -> None:
    events = []
    client.app[BROKER].events.subscribe(events.append)
    entity = {"id": "urn:a:2", "type": "T", "p": {"type": "Property", "value": 1}}
    await client.post("/ngsi-ld/v1/entities", json=entity)
    await client.patch("/ngsi-ld/v1/entities/urn:a:2/attrs", json={"p": 2})
    await client.delete("/ngsi-ld/v1/entities/urn:a:2")
    assert [e.trigger for e in events] == ["entityCreated", "entityUpdated", "entityDeleted"]
    assert list(events[1].attributes.values()) == ["attributeUpdated"]


def test_cluster_mode_needs_a_store_processes_can_share(tmp_path) -> None:
    for settings in (Settings(store="memory:", cluster=True), Settings(store="memory:", workers=2)):
        with pytest.raises(ValueError, match="--cluster needs a store that processes can share"):
            create_app(settings)
    # --reuse-port alone on a private store: every process keeps its own data, no cluster
    assert create_app(Settings(store="memory:", reuse_port=True))[BROKER].node is None
    shared = create_app(Settings(store=f"sqlite:///{tmp_path}/c.db", reuse_port=True))
    assert shared[BROKER].node is not None


# -- 6.3.4: request bodies, however they arrive -------------------------------------------
async def _raw_request(client: TestClient, head: bytes, *pieces: bytes) -> tuple[int, bytes]:
    """Send ``head`` then each piece after a pause; the status and body of the answer."""
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head)
        for piece in pieces:
            await writer.drain()
            await asyncio.sleep(0.05)  # the handler starts before the rest arrives
            writer.write(piece)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _entity_bytes(n: int, size: int = 0) -> bytes:
    entity = {"id": f"urn:ngsi-ld:Body:{n}", "type": "T",
              "p": {"type": "Property", "value": "x" * size}}
    return orjson.dumps(entity)


def _chunked(body: bytes, parts: int) -> list[bytes]:
    step = max(1, len(body) // parts)
    chunks = [body[i:i + step] for i in range(0, len(body), step)]
    return [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks] + [b"0\r\n\r\n"]


HEAD = (b"POST /ngsi-ld/v1/entities HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n")


async def test_a_body_arriving_after_its_headers_is_read_whole(client: TestClient) -> None:
    body = _entity_bytes(1, size=200_000)
    head = HEAD + b"Content-Length: %d\r\n\r\n" % len(body)
    status, _ = await _raw_request(client, head, body[:10], body[10:150_000], body[150_000:])
    assert status == 201
    got = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Body:1?options=keyValues")
    assert (await got.json())["p"] == "x" * 200_000


async def test_a_chunked_body_is_a_bare_411_and_the_limit_applies_to_late_bodies() -> None:
    # 6.3.4: POST, PATCH and PUT must carry Content-Length; chunked gets no exemption
    c = await _client(Settings(store="memory:", max_body_size=4096))
    try:
        small = _entity_bytes(2, size=100)
        head = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
        status, answer = await _raw_request(c, head, *_chunked(small, 3))
        assert (status, answer) == (411, b"")
        status, answer = await _raw_request(c, head + b"".join(_chunked(small, 1)))
        assert (status, answer) == (411, b"")
        assert (await c.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Body:2")).status == 404
        big = _entity_bytes(3, size=10_000)  # announced: refused before it is read
        status, _ = await _raw_request(c, HEAD + b"Content-Length: %d\r\n\r\n" % len(big) + big)
        assert status == 413
        status, answer = await _raw_request(  # arriving in pieces after its headers
            c, HEAD + b"Content-Length: %d\r\n\r\n" % len(small), small[:20], small[20:])
        assert status == 201
    finally:
        await c.close()
