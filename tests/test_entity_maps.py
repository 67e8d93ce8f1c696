"""Entity maps (5.14, 5.5.9.3): the resource, entityMap=true, and paging that walks a map."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_federation_forwarding import Federation, fed, lamp, registration, url_of

from broker.app import create_app
from broker.config import Settings

JSON = {"Content-Type": "application/json"}
__all__ = ["fed"]

IDS = [f"urn:ngsi-ld:Vehicle:m{n}" for n in range(5)]


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    c = TestClient(TestServer(create_app(Settings(store="memory:", outbound_allow="127.0.0.0/8"))))
    await c.start_server()
    for n, entity_id in enumerate(IDS):
        await c.post("/ngsi-ld/v1/entities", headers=JSON, json={
            "id": entity_id, "type": "Vehicle", "speed": {"type": "Property", "value": n * 20}})
    yield c
    await c.close()


async def test_a_map_is_created_retrieved_updated_and_deleted(client: TestClient) -> None:
    resp = await client.get("/ngsi-ld/v1/entityMaps?type=Vehicle&q=speed>30")
    body = await resp.json()
    assert resp.status == 201, body
    location = resp.headers["NGSILD-EntityMap"]
    assert body["type"] == "EntityMap" and sorted(body["entityMap"]) == IDS[2:]
    assert all(v == ["@none"] for v in body["entityMap"].values())
    again = await (await client.get(location)).json()
    assert again["entityMap"] == body["entityMap"]
    patched = await client.patch(location, json={"expiresAt": "2020-01-01T00:00:00Z"},
                                 headers=JSON)
    assert patched.status == 204
    assert (await client.get(location)).status == 404  # expired
    assert (await client.delete(location)).status == 404
    too_wide = await client.get(f"/ngsi-ld/v1/entityMaps?id={IDS[0]}")
    assert too_wide.status == 400
    bad = await client.get("/ngsi-ld/v1/entityMaps?type=Vehicle&entityMapLifetime=1hour")
    assert bad.status == 400
    assert (await client.get("/ngsi-ld/v1/entityMaps/not%20a%20uri")).status == 400


async def test_pages_walk_the_map_and_prune_what_no_longer_fits(client: TestClient) -> None:
    first = await client.get("/ngsi-ld/v1/entities?type=Vehicle&entityMap=true&limit=2")
    assert first.status == 201
    assert [e["id"] for e in await first.json()] == IDS[:2]
    header = {"NGSILD-EntityMap": first.headers["NGSILD-EntityMap"]}
    # an entity created after the map is not in it; a deleted one is pruned
    await client.post("/ngsi-ld/v1/entities", headers=JSON, json={
        "id": "urn:ngsi-ld:Vehicle:m10", "type": "Vehicle"})
    await client.delete(f"/ngsi-ld/v1/entities/{IDS[1]}")
    page = await client.get("/ngsi-ld/v1/entities?type=Vehicle&limit=3&count=true",
                            headers=header)
    assert page.status == 200
    assert [e["id"] for e in await page.json()] == [IDS[0], IDS[2], IDS[3]]
    assert page.headers["NGSILD-Results-Count"] == "4"
    assert page.headers["NGSILD-EntityMap"] == header["NGSILD-EntityMap"]
    assert 'rel="next"' in page.headers["Link"]
    stored = await (await client.get(header["NGSILD-EntityMap"])).json()
    assert IDS[1] not in stored["entityMap"] and "urn:ngsi-ld:Vehicle:m10" not in stored[
        "entityMap"]
    last = await client.get("/ngsi-ld/v1/entities?type=Vehicle&limit=3&offset=3",
                            headers=header)
    assert [e["id"] for e in await last.json()] == [IDS[4]]
    assert 'rel="next"' not in last.headers.get("Link", "")


async def test_a_temporal_map_needs_a_temporal_query_and_selects_by_window(
        client: TestClient) -> None:
    maps = "/ngsi-ld/v1/temporal/entityMaps?type=Vehicle"
    assert (await client.get(maps)).status == 400
    future = await client.get(maps + "&timerel=before&timeAt=2999-01-01T00:00:00Z"
                              "&timeproperty=createdAt")
    assert future.status == 201
    assert sorted((await future.json())["entityMap"]) == IDS
    past = await client.get(maps + "&timerel=before&timeAt=2000-01-01T00:00:00Z"
                            "&timeproperty=createdAt")
    assert (await past.json())["entityMap"] == {}


async def test_a_retrieval_creates_names_or_replaces_a_map(client: TestClient) -> None:
    one = f"/ngsi-ld/v1/entities/{IDS[0]}"
    plain = await client.get(one)
    assert "NGSILD-EntityMap" not in plain.headers
    created = await client.get(one + "?entityMap=true")
    assert created.status == 200 and (await created.json())["id"] == IDS[0]
    location = created.headers["NGSILD-EntityMap"]
    stored = await (await client.get(location)).json()
    assert stored["entityMap"] == {IDS[0]: ["@none"]}
    echoed = await client.get(one, headers={"NGSILD-EntityMap": location})
    assert echoed.headers["NGSILD-EntityMap"] == location
    dead = await client.get(one, headers={"NGSILD-EntityMap": "urn:ngsi-ld:EntityMap:gone"})
    assert dead.status == 200
    assert dead.headers["NGSILD-EntityMap"] not in ("urn:ngsi-ld:EntityMap:gone", location)


TEMPORAL = "/ngsi-ld/v1/temporal/entities"
WINDOW = "timerel=after&timeAt=2000-01-01T00:00:00Z&timeproperty=createdAt"


async def test_a_temporal_retrieval_creates_echoes_or_replaces_a_map(client: TestClient) -> None:
    # 5.7.3.4: entityMap=true on the temporal evolution of one Entity
    one = f"{TEMPORAL}/{IDS[0]}?{WINDOW}"
    assert "NGSILD-EntityMap" not in (await client.get(one)).headers
    created = await client.get(one + "&entityMap=true")
    assert created.status == 200 and (await created.json())["id"] == IDS[0]
    location = created.headers["NGSILD-EntityMap"]
    assert (await (await client.get(location)).json())["entityMap"] == {IDS[0]: ["@none"]}
    echoed = await client.get(one, headers={"NGSILD-EntityMap": location})
    assert echoed.status == 200 and echoed.headers["NGSILD-EntityMap"] == location
    dead = await client.get(one, headers={"NGSILD-EntityMap": "urn:ngsi-ld:EntityMap:gone"})
    assert dead.headers["NGSILD-EntityMap"] not in ("urn:ngsi-ld:EntityMap:gone", location)


async def test_a_temporal_query_map_fixes_its_entities_and_pages(client: TestClient) -> None:
    # 5.7.4.4: the map made by entityMap=true fixes what later pages consider
    first = await client.get(f"{TEMPORAL}?type=Vehicle&q=speed>30&{WINDOW}"
                             "&entityMap=true&limit=2")
    assert first.status == 201, await first.text()
    assert [e["id"] for e in await first.json()] == IDS[2:4]
    header = {"NGSILD-EntityMap": first.headers["NGSILD-EntityMap"]}
    stored = await (await client.get(header["NGSILD-EntityMap"])).json()
    assert sorted(stored["entityMap"]) == IDS[2:]
    # a broader query walking the map sees the map's entities only, a deleted one pruned
    await client.delete(f"/ngsi-ld/v1/entities/{IDS[3]}")
    page = await client.get(f"{TEMPORAL}?type=Vehicle&{WINDOW}&count=true", headers=header)
    assert page.status == 200
    assert [e["id"] for e in await page.json()] == [IDS[2], IDS[4]]
    assert page.headers["NGSILD-Results-Count"] == "2"
    assert page.headers["NGSILD-EntityMap"] == header["NGSILD-EntityMap"]
    stored = await (await client.get(header["NGSILD-EntityMap"])).json()
    assert sorted(stored["entityMap"]) == [IDS[2], IDS[4]]


async def test_a_dead_map_on_a_temporal_query_is_replaced(client: TestClient) -> None:
    dead = "urn:ngsi-ld:EntityMap:gone"
    resp = await client.get(f"{TEMPORAL}?type=Vehicle&{WINDOW}",
                            headers={"NGSILD-EntityMap": dead})
    assert resp.status == 201
    assert len(await resp.json()) == len(IDS)
    location = resp.headers["NGSILD-EntityMap"]
    assert "gone" not in location
    assert sorted((await (await client.get(location)).json())["entityMap"]) == IDS


async def test_a_temporal_query_keeps_what_sources_hold_in_a_map(fed: Federation) -> None:
    # a map made by a distributed query, walked by a temporal query (answered here only):
    # the entity a source holds is not shown, nor pruned from the map
    source = await fed.source()
    await source.post("/ngsi-ld/v1/entities", json=lamp(2, power=5), headers=JSON)
    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(1, power=1), headers=JSON)
    fed.register(registration(url_of(source)))
    made = await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp&entityMap=true")
    assert made.status == 201
    header = {"NGSILD-EntityMap": made.headers["NGSILD-EntityMap"]}
    walked = await fed.hub.get(f"{TEMPORAL}?type=Lamp&{WINDOW}", headers=header)
    assert walked.status == 200
    assert [e["id"] for e in await walked.json()] == ["urn:ngsi-ld:Lamp:1"]
    stored = await (await fed.hub.get(header["NGSILD-EntityMap"])).json()
    assert sorted(stored["entityMap"]) == ["urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Lamp:2"]
