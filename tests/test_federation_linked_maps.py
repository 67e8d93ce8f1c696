"""Entity maps' linkedMaps (5.2.39, 5.5.9.3): a source that answers a query with its own
NGSILD-EntityMap has that map recorded in the hub's map, and is asked within it when the
hub's map is walked."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from test_federation_forwarding import JSON, Federation, fed, lamp, registration, url_of

__all__ = ["fed"]

API = "/ngsi-ld/v1"
R1 = "urn:ngsi-ld:ContextSourceRegistration:r1"


async def test_a_source_map_is_linked_and_kept_whole_while_the_hub_pages(
        fed: Federation) -> None:
    source = await fed.source()
    for n in (2, 3):
        await source.post(API + "/entities", json=lamp(n, power=n), headers=JSON)
    await fed.hub.post(API + "/entities", json=lamp(1, power=1), headers=JSON)
    fed.register(registration(url_of(source)))
    first = await fed.hub.get(API + "/entities?type=Lamp&entityMap=true&limit=1")
    assert first.status == 201
    assert [e["id"] for e in await first.json()] == ["urn:ngsi-ld:Lamp:1"]
    location = first.headers["NGSILD-EntityMap"]
    hub_map = await (await fed.hub.get(location)).json()
    linked = hub_map["linkedMaps"][R1]
    assert linked.startswith(url_of(source) + API + "/entityMaps/")
    # the linked map is the source's own map of what it answered
    at_source = await source.get(linked.removeprefix(url_of(source)))
    assert at_source.status == 200
    assert sorted((await at_source.json())["entityMap"]) == ["urn:ngsi-ld:Lamp:2",
                                                              "urn:ngsi-ld:Lamp:3"]
    seen = []
    for offset in (1, 2):
        page = await fed.hub.get(f"{API}/entities?type=Lamp&limit=1&offset={offset}",
                                 headers={"NGSILD-EntityMap": location})
        assert page.status == 200
        seen += [e["id"] for e in await page.json()]
    assert seen == ["urn:ngsi-ld:Lamp:2", "urn:ngsi-ld:Lamp:3"]
    # asked within its map for one entity at a time, the source pruned none of the others
    again = await (await source.get(linked.removeprefix(url_of(source)))).json()
    assert sorted(again["entityMap"]) == ["urn:ngsi-ld:Lamp:2", "urn:ngsi-ld:Lamp:3"]


async def test_the_linked_map_is_sent_to_its_source_on_the_next_pages(
        fed: Federation) -> None:
    asked: list[tuple[str, str | None]] = []

    async def source(request: web.Request) -> web.Response:
        asked.append((request.query_string, request.headers.get("NGSILD-EntityMap")))
        body: list[dict[str, Any]] = [lamp(2, power=2)]
        headers = {"NGSILD-EntityMap": "/ngsi-ld/v1/entityMaps/urn:ngsi-ld:EntityMap:src"} \
            if request.query.get("entityMap") == "true" else {}
        return web.json_response(body, headers=headers, status=201 if headers else 200)

    url = await fed.mock(source)
    await fed.hub.post(API + "/entities", json=lamp(1, power=1), headers=JSON)
    fed.register(registration(url))
    made = await fed.hub.get(API + "/entities?type=Lamp&entityMap=true&limit=1")
    assert made.status == 201
    hub_map = await (await fed.hub.get(made.headers["NGSILD-EntityMap"])).json()
    assert hub_map["linkedMaps"] == {R1: url + "/ngsi-ld/v1/entityMaps/urn:ngsi-ld:EntityMap:src"}
    assert "entityMap=true" in asked[0][0] and asked[0][1] is None
    asked.clear()
    page = await fed.hub.get(API + "/entities?type=Lamp&limit=1&offset=1",
                             headers={"NGSILD-EntityMap": made.headers["NGSILD-EntityMap"]})
    assert [e["id"] for e in await page.json()] == ["urn:ngsi-ld:Lamp:2"]
    assert asked and all(header == hub_map["linkedMaps"][R1] for _, header in asked)
    assert all("entityMap=true" not in query for query, _ in asked)
    # a plain query neither asks for a map nor sends one
    asked.clear()
    await fed.hub.get(API + "/entities?type=Lamp")
    assert asked and all("entityMap" not in q and h is None for q, h in asked)
