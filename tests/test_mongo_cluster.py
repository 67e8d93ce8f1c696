"""Two broker instances on one MongoDB (docs/scaling.md): reads, subscriptions, leases.

The two brokers are two applications in THIS test process (``create_app`` with
``--cluster true``), each with its own MongoStore, change stream, subscription
manager and leases: separate processes could not share the in-memory MongoDB
stand-in.  ``mongodb-stand-in`` runs always (tests/mongo_standin.py and its change
streams); ``mongodb-real`` runs the same tests on the replica set
``NGSI_LD_TEST_MONGODB_URL`` names, when set (README, "Scaling out").
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cluster_steps import powers, set_power, settle, until
from mongo_standin import OneServer

from broker.app import create_app
from broker.config import Settings
from storage.mongo import MongoStore

MONGODB_URL = os.environ.get("NGSI_LD_TEST_MONGODB_URL")
REAL = pytest.param("mongodb-real", marks=pytest.mark.skipif(
    MONGODB_URL is None,
    reason="no MongoDB replica set: set NGSI_LD_TEST_MONGODB_URL=mongodb://host:27017/"
           "?replicaSet=rs0 to run"))
ENTITIES = "/ngsi-ld/v1/entities"
SUBS = "/ngsi-ld/v1/subscriptions"
LD = {"Content-Type": "application/ld+json"}
CTX = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"


def lamp(n: int, power: int = 0) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp",
            "power": {"type": "Property", "value": power}, "@context": CTX}


def subscription(sub_id: str, url: str) -> dict[str, Any]:
    return {"id": sub_id, "type": "Subscription", "entities": [{"type": "Lamp"}],
            "notification": {"endpoint": {"uri": url}}, "@context": CTX}


class Deployment(OneServer):
    """Broker instances on one server (one stand-in client, or the real replica set)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.database = f"ngsild_test_{uuid.uuid4().hex[:12]}"
        self.brokers: list[TestClient] = []
        self.stores: list[MongoStore] = []

    async def broker(self) -> TestClient:
        url = MONGODB_URL if self.kind == "mongodb-real" else "mongodb://stand-in/"
        assert url is not None
        factory = self.factory if self.kind == "mongodb-stand-in" else None
        store = MongoStore(url, database=self.database, client_factory=factory)
        settings = Settings(store=url, cluster=True, cluster_lease_ttl=1.0,
                            outbound_allow="127.0.0.0/8")
        client = TestClient(TestServer(create_app(settings, store=store)))
        await client.start_server()
        self.brokers.append(client)
        self.stores.append(store)
        return client

    async def stop(self, broker: TestClient) -> None:
        """Stop one broker as a process shuts down (it releases its leases)."""
        self.brokers.remove(broker)
        await broker.close()

    async def close(self) -> None:
        for broker in list(self.brokers):
            await broker.close()
        if self.kind == "mongodb-real":
            cleaner = MongoStore(MONGODB_URL or "", database=self.database)
            await cleaner.open()
            await cleaner.drop_databases()
            await cleaner.close()


@pytest.fixture(params=["mongodb-stand-in", REAL])
async def deployment(request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    found = Deployment(request.param)
    yield found
    await found.close()



async def test_a_write_through_one_broker_is_read_through_the_other(deployment) -> None:
    a, b = await deployment.broker(), await deployment.broker()
    assert (await a.post(ENTITIES, json=lamp(1, 5), headers=LD)).status == 201
    reply = await b.get(f"{ENTITIES}/urn:ngsi-ld:Lamp:1")
    assert reply.status == 200 and (await reply.json())["power"]["value"] == 5
    await set_power(b, 1, 6)
    reply = await a.get(ENTITIES, params={"type": "Lamp", "q": "power==6"})
    assert [e["id"] for e in await reply.json()] == ["urn:ngsi-ld:Lamp:1"]


async def test_each_subscription_is_notified_once_whoever_takes_the_write(
        deployment, receiver) -> None:
    a, b = await deployment.broker(), await deployment.broker()
    assert (await a.post(ENTITIES, json=lamp(1), headers=LD)).status == 201
    for n, broker in enumerate((a, b)):  # one subscription held by each broker
        sub = subscription(f"urn:ngsi-ld:Subscription:{n}", receiver.url(f"s{n}"))
        assert (await broker.post(SUBS, json=sub, headers=LD)).status == 201
    # the other broker learns of each subscription from the change stream
    for broker in (a, b):
        for n in range(2):
            reply = await broker.get(f"{SUBS}/urn:ngsi-ld:Subscription:{n}")
            assert reply.status == 200
    for power in range(1, 11):
        await set_power(a if power % 2 else b, 1, power)
    await until(lambda: len(powers(receiver, "s0")) >= 10 and len(powers(receiver, "s1")) >= 10)
    await settle()
    for path in ("s0", "s1"):
        assert sorted(powers(receiver, path)) == list(range(1, 11)), path


async def test_a_stopped_brokers_subscriptions_are_taken_over(deployment, receiver) -> None:
    a, b = await deployment.broker(), await deployment.broker()
    assert (await a.post(ENTITIES, json=lamp(1), headers=LD)).status == 201
    sub = subscription("urn:ngsi-ld:Subscription:a", receiver.url("a"))
    assert (await a.post(SUBS, json=sub, headers=LD)).status == 201  # A holds its lease
    await set_power(b, 1, 1)  # written through B, delivered by A
    await until(lambda: powers(receiver, "a") == [1])
    store_b = deployment.stores[1]
    assert list((await store_b.lease_holders("subscription:")).values()) == [
        deployment.stores[0].origin]
    await deployment.stop(a)  # A shuts down and releases its leases: B claims them
    held: dict[str, str] = {}
    for _ in range(200):  # B's next lease round (every TTL / 3)
        held = await store_b.lease_holders("subscription:")
        if list(held.values()) == [store_b.origin]:
            break
        await asyncio.sleep(0.02)
    assert list(held.values()) == [store_b.origin]
    for power in (2, 3):
        await set_power(b, 1, power)
    await until(lambda: len(powers(receiver, "a")) >= 3)
    await settle()
    assert powers(receiver, "a") == [1, 2, 3]
