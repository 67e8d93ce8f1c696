"""IoT Agent style context sources (issue 16 item 4): lazy attributes fetched on GET,
commands forwarded on PATCH, through registrations made with the API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from broker.app import create_app
from broker.config import Settings
from tests.iot_agent_standin import Device, IotAgent

JSON = {"Content-Type": "application/json"}
LAMP = "urn:ngsi-ld:Lamp:17"


@pytest.fixture
async def setup() -> AsyncIterator[tuple[TestClient, IotAgent]]:
    agent = IotAgent(Device(LAMP, "Lamp", {"dimLevel": 40}), command_names=("switch",))
    agent_server = TestServer(agent.app)
    await agent_server.start_server()
    settings = Settings(store="memory:", outbound_allow="127.0.0.0/8")  # the agent is local
    broker = TestClient(TestServer(create_app(settings)))
    await broker.start_server()
    # the agent provisions the device: active attributes in the broker, lazy ones and
    # commands registered (inclusive, as agents do)
    await broker.post("/ngsi-ld/v1/entities", headers=JSON, json={
        "id": LAMP, "type": "Lamp", "temperature": {"type": "Property", "value": 21}})
    resp = await broker.post("/ngsi-ld/v1/csourceRegistrations", headers=JSON, json={
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"id": LAMP, "type": "Lamp"}],
                         "propertyNames": ["dimLevel", "switch"]}],
        "operations": ["retrieveOps", "updateOps"],
        "endpoint": str(agent_server.make_url("")).rstrip("/"),
    })
    assert resp.status == 201, await resp.text()
    yield broker, agent
    await broker.close()
    await agent_server.close()


async def test_get_fetches_lazy_attributes_from_the_agent(
        setup: tuple[TestClient, IotAgent]) -> None:
    broker, agent = setup
    resp = await broker.get(f"/ngsi-ld/v1/entities/{LAMP}")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["temperature"]["value"] == 21  # active, held by the broker
    assert body["dimLevel"]["value"] == 40  # lazy, read from the device now
    agent.devices[LAMP].lazy["dimLevel"] = 70
    again = await (await broker.get(f"/ngsi-ld/v1/entities/{LAMP}?attrs=dimLevel")).json()
    assert again["dimLevel"]["value"] == 70
    assert "temperature" not in again


async def test_patch_of_a_command_is_forwarded_to_the_agent(
        setup: tuple[TestClient, IotAgent]) -> None:
    broker, agent = setup
    resp = await broker.patch(f"/ngsi-ld/v1/entities/{LAMP}/attrs/switch", headers=JSON,
                              json={"type": "Property", "value": "on"})
    assert resp.status == 204, await resp.text()
    assert agent.devices[LAMP].commands == [("switch", "on")]


async def test_a_patch_of_an_active_attribute_stays_in_the_broker(
        setup: tuple[TestClient, IotAgent]) -> None:
    broker, agent = setup
    resp = await broker.patch(f"/ngsi-ld/v1/entities/{LAMP}/attrs/temperature", headers=JSON,
                              json={"type": "Property", "value": 22})
    assert resp.status == 204
    assert agent.devices[LAMP].commands == []
    body = await (await broker.get(f"/ngsi-ld/v1/entities/{LAMP}?local=true")).json()
    assert body["temperature"]["value"] == 22
