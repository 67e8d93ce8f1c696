"""Registration subscriptions notified over MQTT (5.11, 5.8.1.4), against a real Mosquitto."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient
from test_subscriptions_mqtt import listen, mqtt_port

__all__ = ["mqtt_port"]  # the fixture, shared with the entity subscriptions' MQTT tests


async def test_registration_changes_are_published(client: TestClient, mqtt_port: int) -> None:
    ready = asyncio.Event()
    listener = asyncio.create_task(listen(mqtt_port, "sources", 2, ready))
    await asyncio.wait_for(ready.wait(), 5)
    response = await client.post("/ngsi-ld/v1/csourceSubscriptions", json={
        "type": "Subscription", "entities": [{"type": "Building"}],
        "notification": {"endpoint": {
            "uri": f"mqtt://127.0.0.1:{mqtt_port}/sources",
            "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}]}}})
    assert response.status == 201
    registration = {"id": "urn:ngsi-ld:ContextSourceRegistration:m",
                    "type": "ContextSourceRegistration",
                    "information": [{"entities": [{"type": "Building"}]}],
                    "endpoint": "http://source:1026"}
    assert (await client.post("/ngsi-ld/v1/csourceRegistrations", json=registration)).status \
        == 201
    assert (await client.delete(
        "/ngsi-ld/v1/csourceRegistrations/urn:ngsi-ld:ContextSourceRegistration:m")).status \
        == 204
    (first, qos), (second, _) = await asyncio.wait_for(listener, 5)
    assert qos == 1
    assert first["metadata"]["Content-Type"] == "application/json"
    assert first["body"]["type"] == "ContextSourceNotification"
    assert [m["body"]["triggerReason"] for m in (first, second)] == [
        "newlyMatching", "noLongerMatching"]
    assert first["body"]["data"][0]["id"] == registration["id"]
