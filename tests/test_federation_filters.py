"""The filters of a POST query and of a Snapshot are forwarded to the sources (4.3.6,
5.7.2.4, 5.16.1.4): the sources filter, so they answer what matches, not everything."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from test_federation_forwarding import JSON, Federation, fed, lamp, registration, url_of

__all__ = ["fed"]


def located(n: int, power: int, lon: float, scope: str) -> dict[str, Any]:
    return {**lamp(n, power=power), "scope": scope,
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [lon, 0.0]}}}


async def test_a_post_query_forwards_q_scope_and_geo(fed: Federation) -> None:
    seen: list[dict[str, Any]] = []

    async def source(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        seen.append({"method": request.method, "query": dict(request.query), "body": body})
        return web.json_response([])

    fed.register(registration(await fed.mock(source)))
    query = {"type": "Query", "entities": [{"type": "Lamp"}], "q": "power>10",
             "scopeQ": "/city/#",
             "geoQ": {"geometry": "Point", "coordinates": [0, 0],
                      "georel": "near;maxDistance==2000"}}
    resp = await fed.hub.post("/ngsi-ld/v1/entityOperations/query", json=query, headers=JSON)
    assert resp.status == 200, await resp.text()
    (asked,) = seen
    sent = asked["query"] if asked["method"] == "GET" else {**asked["body"],
                                                             **asked["body"].get("geoQ", {})}
    assert sent["q"] == "power>10" and sent["scopeQ"] == "/city/#"
    assert sent["georel"] == "near;maxDistance==2000" and sent["geometry"] == "Point"


async def test_sources_filter_a_post_query_and_pages_stay_whole(fed: Federation) -> None:
    source = await fed.source()
    for n in range(10):
        await source.post("/ngsi-ld/v1/entities", headers=JSON,
                          json=located(n, n * 10, n * 0.001, "/city/north" if n % 2 else "/x"))
    fed.register(registration(url_of(source)))
    query = {"type": "Query", "entities": [{"type": "Lamp"}], "q": "power>=20",
             "scopeQ": "/city/#",
             "geoQ": {"geometry": "Point", "coordinates": [0, 0],
                      "georel": "near;maxDistance==800"}}
    resp = await fed.hub.post("/ngsi-ld/v1/entityOperations/query?limit=2&count=true",
                              json=query, headers=JSON)
    body = await resp.json()
    assert resp.status == 200, body
    # power >= 20, an odd n (scope /city/north), within 800 m of (0, 0): n = 3, 5, 7
    assert [e["id"] for e in body] == ["urn:ngsi-ld:Lamp:3", "urn:ngsi-ld:Lamp:5"]
    assert resp.headers["NGSILD-Results-Count"] == "3"
    assert 'rel="next"' in resp.headers["Link"]


async def test_a_snapshot_asks_the_sources_for_its_matches_only(fed: Federation) -> None:
    seen: list[str] = []

    async def source(request: web.Request) -> web.Response:
        seen.append(request.query.get("q") or str(await request.text()))
        matching = [lamp(n, power=n * 10) for n in range(5) if n * 10 > 25]
        return web.json_response(matching)

    fed.register(registration(await fed.mock(source)))
    created = await fed.hub.post("/ngsi-ld/v1/snapshots", headers=JSON, json={
        "type": "Snapshot", "snapshotQueries": [
            {"type": "Query", "entities": [{"type": "Lamp"}], "q": "power>25"}]})
    assert created.status in (201, 202), await created.text()
    for _ in range(200):
        if seen:
            break
        await asyncio.sleep(0.02)
    assert seen and "power>25" in seen[0]
