"""Clauses 5.9 and 5.10 over HTTP: /csourceRegistrations (create, read, update, delete, query)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fuzz_json import JSON_VALUES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.app import create_app
from broker.config import Settings

BASE = "/ngsi-ld/v1/csourceRegistrations"
CTX = "https://example.org/ctx.jsonld"
REG = "urn:ngsi-ld:ContextSourceRegistration:"
LD = "application/ld+json"
INLINE = {"Vehicle": "https://example.org/Vehicle", "speed": "https://example.org/speed",
          "brand": "https://example.org/brand"}


def registration(suffix: str = "1", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": REG + suffix,
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}],
        "endpoint": "http://source.example.org:1026",
    }
    doc.update(extra)
    return doc


def problem(body: dict[str, Any], kind: str) -> None:
    assert body["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{kind}", body


async def create(client: TestClient, doc: dict[str, Any], status: int = 201,
                 headers: dict[str, str] | None = None) -> Any:
    response = await client.post(BASE, json=doc, headers=headers)
    text = await response.text()
    assert response.status == status, text
    return response


async def test_create_retrieve_shows_what_was_written(client: TestClient) -> None:
    doc = registration(registrationName="cars", scope="/Madrid",
                       contextSourceInfo=[{"key": "k", "value": "v"}],
                       management={"timeout": 500, "cooldown": 1000, "localOnly": True},
                       tenant="city", expiresAt="2099-01-01T00:00:00Z", refreshRate="PT1M")
    response = await create(client, doc)
    assert response.headers["Location"] == f"{BASE}/{REG}1"
    got = await client.get(f"{BASE}/{REG}1")
    assert got.status == 200
    body = await got.json()
    assert body == {**doc, "mode": "inclusive", "operations": ["federationOps"]}
    assert "createdAt" not in body
    with_sys = await (await client.get(f"{BASE}/{REG}1?options=sysAttrs")).json()
    assert with_sys["createdAt"] == with_sys["modifiedAt"]


async def test_create_without_id_gets_one(client: TestClient) -> None:
    doc = registration()
    del doc["id"]
    response = await create(client, doc)
    location = response.headers["Location"]
    assert location.startswith(f"{BASE}/{REG}")
    assert (await client.get(location)).status == 200


async def test_names_follow_the_request_context(client: TestClient) -> None:
    doc = {**registration(), "@context": INLINE}
    response = await create(client, doc, headers={"Content-Type": LD})
    assert response.status == 201
    # stored expanded: a client with the core context sees the IRIs
    plain = await (await client.get(f"{BASE}/{REG}1")).json()
    assert plain["information"][0]["entities"][0]["type"] == "https://example.org/Vehicle"
    assert plain["information"][0]["propertyNames"] == ["https://example.org/speed"]
    # and one asking in JSON-LD with the inline context gets it in the body, compacted
    found = await client.post("/ngsi-ld/v1/jsonldContexts", json={"@context": INLINE})
    assert found.status == 201
    hosted = "http://localhost:1026" + found.headers["Location"]
    link = f'<{hosted}>; rel="http://www.w3.org/ns/json-ld#context"'
    ld = await client.get(f"{BASE}?type=Vehicle", headers={"Accept": LD, "Link": link})
    assert ld.status == 200, await ld.text()
    [doc] = await ld.json()
    assert doc["@context"] == hosted
    assert doc["information"] == [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}]
    # the plain JSON answer names the context in a Link header instead
    plain_answer = await client.get(f"{BASE}/{REG}1", headers={"Link": link})
    assert hosted in plain_answer.headers["Link"]
    assert (await plain_answer.json())["information"][0]["propertyNames"] == ["speed"]


async def test_taken_id_is_409(client: TestClient) -> None:
    await create(client, registration())
    problem(await (await create(client, registration(), 409)).json(), "AlreadyExists")


@pytest.mark.parametrize("wrong", [
    {"endpoint": "ftp://x"},
    {"endpoint": None},
    {"information": []},
    {"information": [{"entities": [{"id": "urn:a"}]}]},
    {"mode": "sometimes"},
    {"operations": ["fly"]},
    {"expiresAt": "2000-01-01T00:00:00Z"},
    {"expiresAt": "tomorrow"},
    {"type": "Registration"},
    {"id": "not a uri"},
    {"management": {"timeout": -1}},
    {"contextSourceInfo": [{"key": "bad header", "value": "x"}]},
    {"mode": "auxiliary", "operations": ["updateOps"]},
    {"mode": "exclusive"},
])
async def test_bad_registrations_are_400(client: TestClient, wrong: dict[str, Any]) -> None:
    response = await client.post(BASE, json=registration(**wrong))
    assert response.status == 400
    problem(await response.json(), "BadRequestData")
    assert (await client.get(f"{BASE}?type=Vehicle")).status == 200
    assert await (await client.get(f"{BASE}?type=Vehicle")).json() == []


async def test_body_that_is_not_json_or_not_an_object(client: TestClient) -> None:
    response = await client.post(BASE, data=b"{", headers={"Content-Type": "application/json"})
    assert response.status == 400
    response = await client.post(BASE, json=[registration()])
    assert response.status == 400
    problem(await response.json(), "BadRequestData")
    response = await client.post(BASE, data=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status == 415


async def test_update_replaces_members_and_removes_with_null(client: TestClient) -> None:
    await create(client, registration(description="old", scope="/a"))
    response = await client.patch(f"{BASE}/{REG}1", json={"description": "new", "scope": None})
    assert response.status == 204
    body = await (await client.get(f"{BASE}/{REG}1")).json()
    assert body["description"] == "new"
    assert "scope" not in body
    for fragment, kind in (({"endpoint": None}, "BadRequestData"),
                           ({"id": REG + "2"}, "BadRequestData"),
                           ({"mode": "wrong"}, "BadRequestData")):
        bad = await client.patch(f"{BASE}/{REG}1", json=fragment)
        assert bad.status == 400
        problem(await bad.json(), kind)
    missing = await client.patch(f"{BASE}/{REG}9", json={"description": "x"})
    assert missing.status == 404
    problem(await missing.json(), "ResourceNotFound")
    not_uri = await client.patch(f"{BASE}/nope", json={"description": "x"})
    assert not_uri.status == 400


async def test_delete(client: TestClient) -> None:
    await create(client, registration())
    assert (await client.delete(f"{BASE}/{REG}1")).status == 204
    assert (await client.get(f"{BASE}/{REG}1")).status == 404
    assert (await client.delete(f"{BASE}/{REG}1")).status == 404
    assert (await client.delete(f"{BASE}/not-a-uri")).status == 400


async def test_query_selectors(client: TestClient) -> None:
    await create(client, registration("1", location={"type": "Point", "coordinates": [1, 1]}))
    await create(client, registration("2", information=[
        {"entities": [{"type": "Building", "id": "urn:ngsi-ld:Building:7"}]}],
        endpoint="http://other:1026", owner="me"))
    await create(client, registration("3", information=[{"propertyNames": ["brand"]}]))

    async def ids(query: str) -> list[str]:
        response = await client.get(f"{BASE}?{query}")
        assert response.status == 200, await response.text()
        return [doc["id"][len(REG):] for doc in await response.json()]

    assert await ids("type=Vehicle") == ["1", "3"]  # 3 registers any entity
    assert await ids("type=Building") == ["2", "3"]
    # a type-only selector may hold any id
    assert await ids("id=urn:ngsi-ld:Building:7") == ["1", "2", "3"]
    assert await ids("attrs=speed") == ["1", "2"]
    assert await ids("attrs=brand") == ["2", "3"]
    assert await ids('csf=endpoint=="http://other:1026"') == ["2"]
    assert await ids('q=owner=="me"') == ["2"]
    assert await ids("georel=near;maxDistance==2000&geometry=Point&coordinates=[1,1]") == ["1"]
    assert await ids("idPattern=.*Building.*&type=Building") == ["2", "3"]
    bad = await client.get(BASE)
    assert bad.status == 400
    problem(await bad.json(), "BadRequestData")
    assert (await client.get(f"{BASE}?q=((")).status == 400
    assert (await client.get(f"{BASE}?type=Vehicle&unknown=1")).status == 400


async def test_query_pages_and_counts(client: TestClient) -> None:
    for n in range(5):
        await create(client, registration(str(n)))
    response = await client.get(f"{BASE}?type=Vehicle&limit=2&offset=2&count=true")
    assert response.headers["NGSILD-Results-Count"] == "5"
    assert [d["id"] for d in await response.json()] == [REG + "2", REG + "3"]
    links = response.headers["Link"]
    assert "offset=0" in links and 'rel="prev"' in links
    assert "offset=4" in links and 'rel="next"' in links
    assert (await client.get(f"{BASE}?type=Vehicle&limit=0")).status == 400
    assert (await client.get(f"{BASE}?type=Vehicle&limit=5000")).status == 403


async def test_json_ld_answers_carry_the_context_in_the_body(client: TestClient) -> None:
    await create(client, registration())
    response = await client.get(f"{BASE}/{REG}1", headers={"Accept": LD})
    body = await response.json()
    assert "@context" in body and "Link" not in response.headers
    assert (await client.get(f"{BASE}/{REG}1", headers={"Accept": "text/html"})).status == 406


async def test_tenants_keep_their_registrations_apart(client: TestClient) -> None:
    await create(client, registration(), headers={"NGSILD-Tenant": "north"})
    assert (await client.get(f"{BASE}/{REG}1", headers={"NGSILD-Tenant": "north"})).status == 200
    missing = await client.get(f"{BASE}/{REG}1")
    assert missing.status == 404
    unknown = await client.get(f"{BASE}?type=Vehicle", headers={"NGSILD-Tenant": "south"})
    assert unknown.status == 404
    problem(await unknown.json(), "NonexistentTenant")


# 4.3.6.3 and 5.9.2.4: exclusive and redirect registrations
def exclusive(suffix: str, entity: str = "urn:ngsi-ld:Vehicle:A", attr: str = "speed",
              mode: str = "exclusive") -> dict[str, Any]:
    return registration(suffix, mode=mode, information=[
        {"entities": [{"id": entity, "type": "Vehicle"}], "propertyNames": [attr]}])


async def test_exclusive_over_local_attribute_is_409(client: TestClient) -> None:
    entity = {"id": "urn:ngsi-ld:Vehicle:A", "type": "Vehicle",
              "speed": {"type": "Property", "value": 1}}
    assert (await client.post("/ngsi-ld/v1/entities", json=entity)).status == 201
    problem(await (await create(client, exclusive("1"), 409)).json(), "Conflict")
    await create(client, exclusive("2", attr="brand"))  # an attribute it does not hold
    problem(await (await create(client, exclusive("3", mode="redirect"), 409)).json(),
            "Conflict")
    # an update into a conflicting shape is refused too, and leaves it as it was
    response = await client.patch(f"{BASE}/{REG}2", json={"information": [
        {"entities": [{"id": "urn:ngsi-ld:Vehicle:A", "type": "Vehicle"}],
         "propertyNames": ["speed"]}]})
    assert response.status == 409
    body = await (await client.get(f"{BASE}/{REG}2")).json()
    assert body["information"][0]["propertyNames"] == ["brand"]


async def test_updates_that_keep_what_is_covered_are_not_conflicts(client: TestClient) -> None:
    await create(client, exclusive("1"))
    entity = {"id": "urn:ngsi-ld:Vehicle:A", "type": "Vehicle",
              "speed": {"type": "Property", "value": 1}}
    response = await client.post("/ngsi-ld/v1/entities?local=true", json=entity)
    assert response.status == 201
    assert (await client.patch(f"{BASE}/{REG}1", json={"description": "x"})).status == 204
    moved = await client.patch(f"{BASE}/{REG}1", json={"mode": "redirect"})
    assert moved.status == 409


async def test_exclusive_registrations_cannot_overlap(client: TestClient) -> None:
    await create(client, exclusive("1"))
    problem(await (await create(client, exclusive("2"), 409)).json(), "Conflict")
    await create(client, exclusive("3", entity="urn:ngsi-ld:Vehicle:B"))
    # inclusive registrations overlap freely
    await create(client, registration("4"))


# persistence: registrations survive a restart of the broker on the same store
@pytest.mark.parametrize("kind", ["sqlite"])
async def test_registrations_survive_a_restart(tmp_path: Path, kind: str) -> None:
    settings = Settings(store=f"sqlite://{tmp_path}/broker.db")
    first = TestClient(TestServer(create_app(settings)))
    await first.start_server()
    try:
        await create(first, registration(expiresAt="2099-01-01T00:00:00Z"),
                     headers={"NGSILD-Tenant": "north"})
        await create(first, registration("2"))
    finally:
        await first.close()
    second = TestClient(TestServer(create_app(settings)))
    await second.start_server()
    try:
        north = await second.get(f"{BASE}/{REG}1", headers={"NGSILD-Tenant": "north"})
        assert north.status == 200
        assert (await north.json())["expiresAt"] == "2099-01-01T00:00:00Z"
        assert (await second.get(f"{BASE}/{REG}2")).status == 200
        assert (await second.get(f"{BASE}/{REG}1")).status == 404
    finally:
        await second.close()


@pytest.fixture
async def expiring() -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(create_app(Settings(store="memory:"))))
    await client.start_server()
    yield client
    await client.close()


async def test_expired_registration_goes(expiring: TestClient) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await create(expiring, registration(expiresAt=soon[:-4] + "Z"))
    assert (await expiring.get(f"{BASE}/{REG}1")).status == 200
    await asyncio.sleep(1.3)
    assert (await expiring.get(f"{BASE}/{REG}1")).status == 404
    assert await (await expiring.get(f"{BASE}?type=Vehicle")).json() == []


# every bad input is a ProblemDetails, never a 500, and never half stored
MEMBERS = st.sampled_from([
    "information", "mode", "operations", "endpoint", "management", "contextSourceInfo",
    "tenant", "scope", "location", "observationInterval", "managementInterval", "expiresAt",
    "refreshRate", "registrationName", "datasetId", "localOnly", "extra"])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=MEMBERS, value=JSON_VALUES, query=st.text(max_size=20))
async def test_no_input_is_a_server_error(client: TestClient, member: str, value: Any,
                                          query: str) -> None:
    doc = registration("fuzz", **{member: value})
    response = await client.post(BASE, json=doc)
    assert response.status in (201, 400), await response.text()
    stored = await client.get(f"{BASE}/{REG}fuzz")
    assert stored.status == (200 if response.status == 201 else 404)
    if response.status == 201:
        patched = await client.patch(f"{BASE}/{REG}fuzz", json={member: value})
        assert patched.status in (204, 400)
        assert (await client.delete(f"{BASE}/{REG}fuzz")).status == 204
    else:
        assert (await response.json())["type"].endswith("/BadRequestData")
    for name in ("q", "csf", "type", "attrs", "idPattern", "coordinates", "timeAt"):
        answer = await client.get(BASE, params={name: query, "georel": "near;maxDistance==1",
                                                "geometry": "Point"}
                                  if name == "coordinates" else
                                  {name: query, "timerel": "after"} if name == "timeAt"
                                  else {name: query})
        assert answer.status in (200, 400), (name, query, await answer.text())
