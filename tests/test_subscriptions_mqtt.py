"""Notifications over MQTT against a real Mosquitto the test starts (clause 5.8)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiomqtt
import orjson
import pytest
from subscriptions_harness import Harness, room

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None)

if MOSQUITTO is None and not os.environ.get("CI"):
    pytest.skip("mosquitto is not installed (apt-get install mosquitto); CI always runs these",
                allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mqtt_port() -> Iterator[int]:
    assert MOSQUITTO is not None, "CI must have mosquitto installed"
    port = free_port()
    proc = subprocess.Popen([MOSQUITTO, "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("mosquitto did not start") from None
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(5)


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = await Harness().start()
    yield harness
    await harness.close()


async def listen(port: int, topic: str, count: int, ready: asyncio.Event,
                 version: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V311,
                 ) -> list[tuple[Any, int]]:
    out: list[tuple[Any, int]] = []
    async with aiomqtt.Client("127.0.0.1", port, protocol=version) as client:
        await client.subscribe(topic, qos=2)
        ready.set()
        async for message in client.messages:
            payload = message.payload
            assert isinstance(payload, bytes | bytearray)
            out.append((orjson.loads(payload), message.qos))
            if len(out) == count:
                return out
    return out


@pytest.mark.parametrize("qos,version", [("0", "mqtt3.1.1"), ("1", "mqtt5.0"), ("2", None)])
async def test_notifications_are_published_with_metadata_and_body(
        h: Harness, mqtt_port: int, qos: str, version: str | None) -> None:
    info = [{"key": "MQTT-QoS", "value": qos}]
    if version:
        info.append({"key": "MQTT-Version", "value": version})
    ready = asyncio.Event()
    listener = asyncio.create_task(listen(mqtt_port, "rooms/notify", 2, ready))
    await asyncio.wait_for(ready.wait(), 5)
    sub_id = await h.subscribe({
        "entities": [{"type": "Room"}],
        "notification": {"endpoint": {
            "uri": f"mqtt://127.0.0.1:{mqtt_port}/rooms/notify", "notifierInfo": info,
            "receiverInfo": [{"key": "fiware-service", "value": "openiot"}]}}})
    await h.create(room(1, 1.0))
    await h.update("urn:ngsi-ld:Room:1", {"temperature": {"type": "Property", "value": 2.0}})
    messages = await asyncio.wait_for(listener, 5)
    (first, first_qos), (second, _) = messages
    assert first_qos == int(qos)
    assert first["metadata"]["Content-Type"] == "application/json"
    assert first["metadata"]["fiware-service"] == "openiot"
    assert "Link" in first["metadata"]
    assert first["body"]["subscriptionId"] == sub_id
    assert first["body"]["type"] == "Notification"
    assert [m["body"]["data"][0]["temperature"]["value"] for m, _ in messages] == [1.0, 2.0]
    assert second["body"]["data"][0]["id"] == "urn:ngsi-ld:Room:1"
    await h.manager.drain()
    notification = (await h.subscription(sub_id))["notification"]
    assert notification["timesSent"] == 2 and notification["status"] == "ok"


async def test_unreachable_mqtt_broker_is_a_failure(h: Harness) -> None:
    sub_id = await h.subscribe({
        "entities": [{"type": "Room"}],
        "notification": {"endpoint": {"uri": f"mqtt://127.0.0.1:{free_port()}/t",
                                      "timeout": 500}}})
    await h.create(room(1))
    await h.manager.drain()
    notification = (await h.subscription(sub_id))["notification"]
    assert notification["status"] == "failed" and notification["timesFailed"] == 1
