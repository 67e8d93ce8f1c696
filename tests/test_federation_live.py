"""Federations of real broker processes on loopback (issue 16 item 5): a hub and two
districts, a loop A<->B, the same entity at hub and source; registrations made
through the API, each broker on its own store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from notify_receiver import Receiver

from conformance.process import BrokerProcess
from ngsi_ld.source_identity import source_alias, source_digest

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}
API = "/ngsi-ld/v1"


@pytest.fixture(scope="module")
def brokers() -> Iterator[list[BrokerProcess]]:
    started = [BrokerProcess("memory:", extra=["--forward-timeout", "1"]) for _ in range(3)]
    try:
        for broker in started:
            broker.start()
        yield started
    finally:
        for broker in started:
            broker.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def alias(broker: BrokerProcess) -> str:
    return source_alias(source_digest(broker.url, broker.store))


def light(entity_id: str, **attrs: Any) -> dict[str, Any]:
    return {"id": entity_id, "type": "Streetlight",
            **{k: {"type": "Property", "value": v} for k, v in attrs.items()}}


async def register(http: aiohttp.ClientSession, at: BrokerProcess, to: BrokerProcess,
                   where: str, **members: Any) -> str:
    body = {"type": "ContextSourceRegistration", "endpoint": to.url,
            "information": [{"entities": [{"type": "Streetlight"}]}],
            "contextSourceAlias": alias(to), **members}
    async with http.post(at.url + API + "/csourceRegistrations", json=body,
                         headers={**JSON, "NGSILD-Tenant": where}) as resp:
        assert resp.status == 201, await resp.text()
        return resp.headers["Location"]


async def create(http: aiohttp.ClientSession, at: BrokerProcess, tenant: str,
                 entity: dict[str, Any]) -> None:
    async with http.post(at.url + API + "/entities", json=entity,
                         headers={**JSON, "NGSILD-Tenant": tenant}) as resp:
        assert resp.status == 201, await resp.text()


async def query(http: aiohttp.ClientSession, at: BrokerProcess, tenant: str,
                params: str) -> tuple[int, list[Any], aiohttp.typedefs.LooseHeaders]:
    async with http.get(at.url + API + "/entities?" + params,
                        headers={"NGSILD-Tenant": tenant}) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_a_hub_answers_across_two_districts(
        brokers: list[BrokerProcess], http: aiohttp.ClientSession) -> None:
    hub, a, b = brokers
    tenant = "hubtwo"
    await create(http, hub, tenant, light("urn:ngsi-ld:Streetlight:hub-1", power=1))
    await create(http, a, tenant, light("urn:ngsi-ld:Streetlight:a-1", power=2))
    await create(http, a, tenant, light("urn:ngsi-ld:Streetlight:a-2", power=3))
    await create(http, b, tenant, light("urn:ngsi-ld:Streetlight:b-1", power=4))
    await register(http, hub, a, tenant, tenant=tenant)
    await register(http, hub, b, tenant, tenant=tenant)
    status, body, headers = await query(http, hub, tenant, "type=Streetlight&count=true")
    assert status == 200
    assert [e["id"] for e in body] == ["urn:ngsi-ld:Streetlight:a-1", "urn:ngsi-ld:Streetlight:a-2",
                                       "urn:ngsi-ld:Streetlight:b-1",
                                       "urn:ngsi-ld:Streetlight:hub-1"]
    assert headers["NGSILD-Results-Count"] == "4"
    status, body, _ = await query(http, hub, tenant, "type=Streetlight&q=power>2")
    assert sorted(e["id"] for e in body) == ["urn:ngsi-ld:Streetlight:a-2",
                                             "urn:ngsi-ld:Streetlight:b-1"]
    status, body, _ = await query(http, hub, tenant, "type=Streetlight&limit=2&offset=1")
    assert [e["id"] for e in body] == ["urn:ngsi-ld:Streetlight:a-2",
                                       "urn:ngsi-ld:Streetlight:b-1"]


async def test_a_loop_between_two_brokers_is_answered_once_each(
        brokers: list[BrokerProcess], http: aiohttp.ClientSession) -> None:
    _, a, b = brokers
    tenant = "loop"
    await create(http, a, tenant, light("urn:ngsi-ld:Streetlight:loop-a"))
    await create(http, b, tenant, light("urn:ngsi-ld:Streetlight:loop-b"))
    # each registers the other; neither names an alias, so only Via can stop the loop
    for at, to in ((a, b), (b, a)):
        body = {"type": "ContextSourceRegistration", "endpoint": to.url, "tenant": tenant,
                "information": [{"entities": [{"type": "Streetlight"}]}]}
        async with http.post(at.url + API + "/csourceRegistrations", json=body,
                             headers={**JSON, "NGSILD-Tenant": tenant}) as resp:
            assert resp.status == 201, await resp.text()
    started = time.monotonic()
    status, body, headers = await query(http, a, tenant, "type=Streetlight")
    assert status == 200
    assert [e["id"] for e in body] == ["urn:ngsi-ld:Streetlight:loop-a",
                                       "urn:ngsi-ld:Streetlight:loop-b"]
    assert "NGSILD-Warning" not in headers
    assert time.monotonic() - started < 1.0  # answered, not timed out along the loop


async def test_the_same_entity_at_hub_and_source_is_merged(
        brokers: list[BrokerProcess], http: aiohttp.ClientSession) -> None:
    hub, a, _ = brokers
    tenant = "same"
    old = {"type": "Property", "value": "off", "observedAt": "2026-01-01T00:00:00Z"}
    new = {"type": "Property", "value": "on", "observedAt": "2026-06-01T00:00:00Z"}
    await create(http, hub, tenant, {**light("urn:ngsi-ld:Streetlight:s", height=9),
                                     "powerState": new})
    await create(http, a, tenant, {**light("urn:ngsi-ld:Streetlight:s", colour="amber"),
                                   "powerState": old})
    await register(http, hub, a, tenant, tenant=tenant)
    async with http.get(hub.url + API + "/entities/urn:ngsi-ld:Streetlight:s",
                        headers={"NGSILD-Tenant": tenant}) as resp:
        entity = await resp.json()
    assert entity["powerState"]["value"] == "on"
    assert entity["height"]["value"] == 9 and entity["colour"]["value"] == "amber"


async def test_a_district_down_costs_its_timeout_and_a_warning(
        brokers: list[BrokerProcess], http: aiohttp.ClientSession) -> None:
    hub, a, _ = brokers
    tenant = "down"
    await create(http, a, tenant, light("urn:ngsi-ld:Streetlight:up"))
    await register(http, hub, a, tenant, tenant=tenant)
    gone = BrokerProcess("memory:")  # a port nobody listens on any more
    body = {"type": "ContextSourceRegistration", "endpoint": gone.url, "tenant": tenant,
            "information": [{"entities": [{"type": "Streetlight"}]}]}
    async with http.post(hub.url + API + "/csourceRegistrations", json=body,
                         headers={**JSON, "NGSILD-Tenant": tenant}) as resp:
        assert resp.status == 201
    status, body_, headers = await query(http, hub, tenant, "type=Streetlight")
    assert status == 200
    assert [e["id"] for e in body_] == ["urn:ngsi-ld:Streetlight:up"]
    assert headers["NGSILD-Warning"].startswith("199 ")


async def test_a_subscription_at_the_hub_hears_of_data_held_at_a_source(
        brokers: list[BrokerProcess], http: aiohttp.ClientSession) -> None:
    hub, a, _ = brokers
    tenant = "subs"
    receiver = await Receiver().start()
    try:
        await create(http, a, tenant, light("urn:ngsi-ld:Streetlight:sub-1", power=1))
        # the hub holds another part of the same lamp: the merged entity is notified
        await create(http, hub, tenant, {**light("urn:ngsi-ld:Streetlight:sub-1"),
                                         "district": {"type": "Property", "value": "A"}})
        await register(http, hub, a, tenant, tenant=tenant)
        subscription = {"type": "Subscription", "entities": [{"type": "Streetlight"}],
                        "q": "power>5", "notification": {"endpoint": {
                            "uri": receiver.url()}}}
        async with http.post(hub.url + API + "/subscriptions", json=subscription,
                             headers={**JSON, "NGSILD-Tenant": tenant}) as resp:
            assert resp.status == 201, await resp.text()
            location = resp.headers["Location"]
        # the source holds a copy that notifies the hub (sent in the background)
        copies: list[Any] = []
        for _ in range(100):
            async with http.get(a.url + API + "/subscriptions",
                                headers={"NGSILD-Tenant": tenant}) as resp:
                copies = await resp.json()
            if copies:
                break
            await asyncio.sleep(0.05)
        assert len(copies) == 1 and "remote-notify" in str(copies[0]["notification"])
        patch = {"power": {"type": "Property", "value": 9}}
        async with http.patch(a.url + API + "/entities/urn:ngsi-ld:Streetlight:sub-1/attrs",
                              json=patch, headers={**JSON, "NGSILD-Tenant": tenant}) as resp:
            assert resp.status == 204
        await receiver.wait_for(1, timeout=10)
        (notification,) = receiver.bodies()
        assert notification["subscriptionId"] == location.rsplit("/", 1)[-1]
        (entity,) = notification["data"]
        assert entity["power"]["value"] == 9 and entity["district"]["value"] == "A"
        async with http.delete(hub.url + location, headers={"NGSILD-Tenant": tenant}) as resp:
            assert resp.status == 204
        async with http.get(a.url + API + "/subscriptions",
                            headers={"NGSILD-Tenant": tenant}) as resp:
            assert await resp.json() == []
    finally:
        await receiver.close()


async def test_temporal_writes_and_reads_through_the_hub(
        brokers: list[BrokerProcess], http: aiohttp.ClientSession) -> None:
    hub, a, _ = brokers
    tenant = "temporal"
    ops = ["retrieveTemporal", "queryTemporal", "upsertTemporal", "appendAttrsTemporal",
           "deleteTemporal"]
    await register(http, hub, a, tenant, tenant=tenant, mode="redirect", operations=ops)
    temporal = API + "/temporal/entities"
    lamp = "urn:ngsi-ld:Streetlight:t-1"
    series = {"id": lamp, "type": "Streetlight", "power": [
        {"type": "Property", "value": v, "observedAt": f"2026-01-01T0{v}:00:00Z"}
        for v in (1, 2)]}
    headers = {**JSON, "NGSILD-Tenant": tenant}
    async with http.post(hub.url + temporal, json=series, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
    more = {"colour": [{"type": "Property", "value": "amber",
                        "observedAt": "2026-01-01T03:00:00Z"}]}
    async with http.post(hub.url + temporal + f"/{lamp}/attrs", json=more,
                         headers=headers) as resp:
        assert resp.status == 204, await resp.text()
    # the district holds it all, the hub nothing of it; read through the hub
    for at, local, expected in ((a, True, 200), (hub, True, 404), (hub, False, 200)):
        async with http.get(at.url + temporal + f"/{lamp}?local={str(local).lower()}",
                            headers={"NGSILD-Tenant": tenant}) as resp:
            assert resp.status == expected, await resp.text()
            if expected == 200:
                got = await resp.json()
                assert [i["value"] for i in got["power"]] == [1, 2]
                assert [i["value"] for i in got["colour"]] == ["amber"]
    async with http.delete(hub.url + temporal + f"/{lamp}",
                           headers={"NGSILD-Tenant": tenant}) as resp:
        assert resp.status == 204, await resp.text()
    async with http.get(a.url + temporal + f"/{lamp}",
                        headers={"NGSILD-Tenant": tenant}) as resp:
        assert resp.status == 404
