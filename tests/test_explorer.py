"""The explorer's server side: page and assets, the live change stream, --explorer off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from broker.app import BROKER, create_app
from broker.config import Settings, load_settings
from broker.events import ChangeBus
from broker.explorer import PageFeed
from broker.explorer.routes import FEEDS
from ngsi_ld.changes import ChangeEvent

ENTITIES = "/ngsi-ld/v1/entities"
JSON = {"Content-Type": "application/json"}


def lamp(number: int, state: str = "on") -> bytes:
    return orjson.dumps({"id": f"urn:ngsi-ld:Streetlight:{number}", "type": "Streetlight",
                         "powerState": {"type": "Property", "value": state}})


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    c = TestClient(TestServer(create_app(Settings(store="memory:"))))
    await c.start_server()
    yield c
    await c.close()


async def next_event(stream: asyncio.StreamReader | object) -> tuple[str, object]:
    """The next server-sent event (name, parsed data) of an aiohttp response body."""
    name, data = "message", b""
    while True:
        line = await stream.readline()  # type: ignore[attr-defined]
        if line in (b"\n", b""):
            if data:
                return name, orjson.loads(data)
            continue
        if line.startswith(b"event:"):
            name = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data += line[5:].strip()


async def test_the_page_and_its_assets_are_served(client: TestClient) -> None:
    async with client.get("/explorer", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/explorer/"
    async with client.get("/explorer/") as resp:
        assert resp.status == 200 and "NGSI-LD explorer" in await resp.text()
    for asset in ("explorer.js", "explorer.css", "leaflet.css", "basemap.json"):
        async with client.get(f"/explorer/assets/{asset}") as resp:
            assert resp.status == 200, asset
    for missing in ("nothing.js", "..%2Fapp.py", "index.html"):
        async with client.get(f"/explorer/assets/{missing}") as resp:
            assert resp.status == 404
            assert (await resp.json())["type"].endswith("/ResourceNotFound")
    async with client.get("/explorer/assets/basemap.json") as resp:
        names = {f["properties"]["name"] for f in orjson.loads(await resp.read())["features"]}
        assert names == {"Hong Kong", "Shanghai"}


async def test_a_write_reaches_the_connected_page(client: TestClient) -> None:
    async with client.get("/explorer/events") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        await stream.content.readline()  # ": connected"
        async with client.post(ENTITIES, data=lamp(1), headers=JSON) as resp:
            assert resp.status == 201
        name, data = await asyncio.wait_for(next_event(stream.content), 5)
        assert name == "changes"
        (change,) = data["changes"]  # type: ignore[index]
        assert change["id"] == "urn:ngsi-ld:Streetlight:1"
        assert change["type"] == ["Streetlight"] and change["trigger"] == "entityCreated"
        assert change["entity"]["powerState"] == "on"  # keyValues, compacted


async def test_pages_see_only_their_tenant(client: TestClient) -> None:
    async with client.post(ENTITIES, data=lamp(9), headers={**JSON, "NGSILD-Tenant": "east"}):
        pass
    async with client.get("/explorer/events", params={"tenant": "east"}) as stream:
        await stream.content.readline()
        await client.post(ENTITIES, data=lamp(2), headers=JSON)  # default tenant: not shown
        await client.post(ENTITIES, data=lamp(3), headers={**JSON, "NGSILD-Tenant": "east"})
        _, data = await asyncio.wait_for(next_event(stream.content), 5)
        assert [c["id"] for c in data["changes"]] == ["urn:ngsi-ld:Streetlight:3"]  # type: ignore[index]
    async with client.get("/explorer/tenants") as resp:
        assert (await resp.json())["tenants"] == ["", "east"]


@pytest.mark.parametrize("temporal", [True, False])
async def test_the_page_is_told_whether_the_temporal_api_is_on(temporal: bool) -> None:
    c = TestClient(TestServer(create_app(Settings(store="memory:", temporal=temporal))))
    await c.start_server()
    try:
        async with c.get("/explorer/features") as resp:
            assert resp.status == 200 and (await resp.json()) == {"temporal": temporal}
        async with c.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:X:1") as resp:
            assert (resp.status == 501) is not temporal  # what the page must not ask
    finally:
        await c.close()


async def test_bad_tenants_answer_problem_details(client: TestClient) -> None:
    async with client.get("/explorer/events", params={"tenant": "nobody"}) as resp:
        assert resp.status == 404
        assert (await resp.json())["type"].endswith("/NonexistentTenant")
    async with client.get("/explorer/events", params={"tenant": "a b"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["type"].endswith("/BadRequestData")


async def test_change_events_are_listened_to_only_while_a_page_is_connected(
    client: TestClient,
) -> None:
    bus = client.app[BROKER].events
    listeners = len(bus._listeners)  # the subscription manager's
    await client.post(ENTITIES, data=lamp(1), headers=JSON)
    assert bus.published == 0  # no page: the write was not even diffed
    async with client.get("/explorer/events") as stream:
        await stream.content.readline()
        await client.post(ENTITIES, data=lamp(2), headers=JSON)
        await asyncio.wait_for(next_event(stream.content), 5)
        assert bus.published == 1 and len(bus._listeners) == listeners + 1
    for number in range(100):  # the server notices the page left at its next write
        await client.post(ENTITIES, data=lamp(3 + number), headers=JSON)
        if not client.app[FEEDS].open:
            break
        await asyncio.sleep(0.01)
    assert not client.app[FEEDS].open and len(bus._listeners) == listeners


def test_a_page_that_does_not_read_holds_a_bounded_buffer() -> None:
    bus = ChangeBus()
    feed = PageFeed(bus, tenant="", limit=100)
    for number in range(250):
        bus.publish(ChangeEvent("", f"urn:x:{number}", None, {}, "entityCreated"))
    assert len(feed.pending) <= 100 and feed.overflowed  # told to reload, memory bounded
    feed.close()
    feed = PageFeed(bus, tenant="", limit=100)
    for _ in range(1000):  # many writes to one entity keep one event
        bus.publish(ChangeEvent("", "urn:x:same", None, {}, "entityUpdated"))
    assert len(feed.pending) == 1
    feed.close()
    assert not bus._listeners


async def test_the_explorer_can_be_turned_off() -> None:
    assert load_settings(["--explorer", "off"], {}).explorer is False
    assert load_settings([], {"NGSI_LD_EXPLORER": "false"}).explorer is False
    assert load_settings([], {}).explorer is True
    off = TestClient(TestServer(create_app(Settings(store="memory:", explorer=False))))
    await off.start_server()
    try:
        async with off.get("/explorer/") as resp:
            assert resp.status == 404
            assert (await resp.json())["type"].endswith("/ResourceNotFound")
    finally:
        await off.close()
