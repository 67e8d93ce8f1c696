"""Subscriptions covering sources (5.8.1.4) survive a restart of the broker: the copies at
the sources are stored with their subscription, so after a restart their notifications
still reach the subscriber, none is made twice, and deleting the subscription deletes them."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from notify_receiver import Receiver

from broker.app import create_app
from broker.config import Settings

JSON = {"Content-Type": "application/json"}
API = "/ngsi-ld/v1"
LAMP = "urn:ngsi-ld:Lamp:1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def hub_on(db: Path, port: int) -> TestClient:
    settings = Settings(store=f"sqlite://{db}", host="127.0.0.1", port=port,
                        outbound_allow="127.0.0.0/8", forward_timeout=2.0)
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=port))
    await client.start_server()
    return client


async def source_holding(entity: dict[str, Any]) -> TestClient:
    """A source broker (memory store) started with ``entity`` created in it."""
    source = TestClient(TestServer(create_app(Settings(store="memory:",
                                                       outbound_allow="127.0.0.0/8"))))
    await source.start_server()
    assert (await source.post(API + "/entities", headers=JSON, json=entity)).status == 201
    return source


async def register(hub: TestClient, source: TestClient, kind: str) -> None:
    """Register ``source`` at ``hub`` for the entities of type ``kind``."""
    registered = await hub.post(API + "/csourceRegistrations", headers=JSON, json={
        "type": "ContextSourceRegistration", "endpoint": str(source.make_url("")),
        "information": [{"entities": [{"type": kind}]}]})
    assert registered.status == 201, await registered.text()


async def subscribe_lamps(hub: TestClient, receiver: Receiver) -> str:
    """Subscribe ``receiver`` at ``hub`` to Lamps with power>5; the Location."""
    created = await hub.post(API + "/subscriptions", headers=JSON, json={
        "type": "Subscription", "entities": [{"type": "Lamp"}], "q": "power>5",
        "notification": {"endpoint": {"uri": receiver.url()}}})
    assert created.status == 201, await created.text()
    return str(created.headers["Location"])


async def copies_at(source: TestClient, count: int) -> list[Any]:
    """The source's subscriptions once there are ``count`` (copies are sent in the
    background), or what there is after a while."""
    found: list[Any] = []
    for _ in range(200):
        found = await (await source.get(API + "/subscriptions")).json()
        if len(found) == count:
            break
        await asyncio.sleep(0.02)
    return found


async def test_copies_survive_a_restart_without_duplicates(tmp_path: Path) -> None:
    receiver = await Receiver().start()
    source = await source_holding(
        {"id": LAMP, "type": "Lamp", "power": {"type": "Property", "value": 1}})
    db, port = tmp_path / "hub.db", free_port()
    hub = await hub_on(db, port)
    try:
        await register(hub, source, "Lamp")
        location = await subscribe_lamps(hub, receiver)
        (copy,) = await copies_at(source, 1)

        await hub.close()
        hub = await hub_on(db, port)
        await asyncio.sleep(0.2)  # let a restarted hub send anything it would send
        assert [c["id"] for c in await copies_at(source, 1)] == [copy["id"]]  # no second copy
        # the copy notifies the restarted hub, which notifies the subscriber
        patched = await source.patch(f"{API}/entities/{LAMP}/attrs", headers=JSON,
                                     json={"power": {"type": "Property", "value": 9}})
        assert patched.status == 204
        await receiver.wait_for(1, timeout=10)
        (notification,) = receiver.bodies()
        assert notification["subscriptionId"] == location.rsplit("/", 1)[-1]
        assert notification["data"][0]["power"]["value"] == 9
        # deleting the subscription after the restart deletes the copy at the source
        assert (await hub.delete(location)).status == 204
        assert await copies_at(source, 0) == []
    finally:
        await hub.close()
        await source.close()
        await receiver.close()
