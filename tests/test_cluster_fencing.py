"""Two broker processes on one store: fenced delivery counters, and no notification of a
change committed before the subscription (subscriptions/ownership.py, docs/scaling.md).

The two brokers are two applications in THIS test process, each with its own store
object, change feed, subscription manager and leases, on one SQLite file
(``sqlite``) or one MongoDB stand-in client (``mongodb-stand-in``,
tests/mongo_standin.py: two processes could not share it); ``mongodb-real`` runs
on the replica set ``NGSI_LD_TEST_MONGODB_URL`` names, when set.  Their lease
TTL is long, so that lease rounds (every TTL / 3) run only at start-up and the
tests move the leases themselves; the second broker of the feed test reads its
feed only when the test tells it to (``catch_up``), so that it learns of a
subscription before it has read a change older than it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cluster_steps import powers, set_power, settle, until
from mongo_standin import StandInClient

from broker.app import create_app
from broker.cluster import ClusterNode
from broker.config import Settings
from broker.state import BROKER
from storage.base import Store
from storage.mongo import MongoStore
from subscriptions import SubscriptionManager
from subscriptions.live import sub_key
from subscriptions.ownership import SUBSCRIPTION

MONGODB_URL = os.environ.get("NGSI_LD_TEST_MONGODB_URL")
REAL = pytest.param("mongodb-real", marks=pytest.mark.skipif(
    MONGODB_URL is None, reason="no MongoDB replica set: set NGSI_LD_TEST_MONGODB_URL"))
ENTITIES = "/ngsi-ld/v1/entities"
SUBS = "/ngsi-ld/v1/subscriptions"
LD = {"Content-Type": "application/ld+json"}
CTX = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
SUB = "urn:ngsi-ld:Subscription:1"
#: the key of SUB in the default tenant, and the name of its lease
KEY = sub_key("", SUB)
LEASE = SUBSCRIPTION + KEY


def lamp(power: int) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp",
            "power": {"type": "Property", "value": power}, "@context": CTX}


def subscription(url: str) -> dict[str, Any]:
    return {"id": SUB, "type": "Subscription", "entities": [{"type": "Lamp"}],
            "notification": {"endpoint": {"uri": url}}, "@context": CTX}


class Deployment:
    """Broker applications on one store (a SQLite file, or one MongoDB server)."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.path = tmp_path / "shared.db"
        self.database = f"ngsild_test_{uuid.uuid4().hex[:12]}"
        self.client: StandInClient | None = None
        self.brokers: list[TestClient] = []

    def _factory(self, url: str, **options: Any) -> StandInClient:
        if self.client is None:
            self.client = StandInClient(url, **options)
        return self.client

    async def broker(self, poll_interval: float = 0.01) -> TestClient:
        """One more broker; ``poll_interval``: how often its node reads the feed."""
        common: dict[str, Any] = {"cluster": True, "cluster_lease_ttl": 60.0,
                                  "cluster_poll_interval": poll_interval,
                                  "outbound_allow": "127.0.0.0/8"}
        if self.kind == "sqlite":
            app = create_app(Settings(store=f"sqlite:///{self.path}", **common))
        else:
            url = MONGODB_URL if self.kind == "mongodb-real" else "mongodb://stand-in/"
            assert url is not None
            factory = self._factory if self.kind == "mongodb-stand-in" else None
            store = MongoStore(url, database=self.database, client_factory=factory)
            app = create_app(Settings(store=url, **common), store=store)
        client = TestClient(TestServer(app))
        await client.start_server()
        self.brokers.append(client)
        return client

    async def close(self) -> None:
        stores = [store(broker) for broker in self.brokers]
        for broker in self.brokers:
            await broker.close()
        if self.kind == "mongodb-real" and stores:
            cleaner = MongoStore(MONGODB_URL or "", database=self.database)
            await cleaner.open()
            await cleaner.drop_databases()
            await cleaner.close()


def manager(broker: TestClient) -> SubscriptionManager:
    return broker.app[BROKER].subscriptions


def node(broker: TestClient) -> ClusterNode:
    found = broker.app[BROKER].node
    assert found is not None
    return found


def store(broker: TestClient) -> Any:
    found: Store = broker.app[BROKER].store
    return found


@pytest.fixture(params=["sqlite", "mongodb-stand-in", REAL])
async def deployment(request: pytest.FixtureRequest,
                     tmp_path: Path) -> AsyncIterator[Deployment]:
    found = Deployment(request.param, tmp_path)
    yield found
    await found.close()



async def test_a_former_owner_writes_no_counters_over_the_new_owners_and_stops_delivering(
        deployment, receiver) -> None:
    a, b = await deployment.broker(), await deployment.broker()
    assert (await a.post(ENTITIES, json=lamp(0), headers=LD)).status == 201
    assert (await a.post(SUBS, json=subscription(receiver.url("s")), headers=LD)).status == 201
    for power in (1, 2):  # delivered by A, the subscription's owner
        await set_power(a, 1, power)
    await until(lambda: powers(receiver, "s") == [1, 2])
    await until(lambda: manager(b).document("", SUB) is not None)
    # A pauses (it reads no more of the feed) past its lease (it expires now), and B
    # takes the subscription over
    await node(a).close()
    assert await store(a).acquire_lease(LEASE, node(a).origin, -1)
    await manager(b)._lease_round()
    assert await store(b).lease_holders(SUBSCRIPTION) == {LEASE: node(b).origin}
    await set_power(b, 1, 3)  # delivered by B
    await until(lambda: 3 in powers(receiver, "s"))
    # B may still be resending what A had queued (at least once): let it finish, so
    # that its counters do not move between the flush and the comparison below
    await settle()
    await manager(b).drain()
    await manager(b).ledger.flush()
    written = (await store(b).get_record("", "subscriptions", SUB))["notification"]
    mine_b = manager(b).document("", SUB)
    assert mine_b is not None and written == mine_b["notification"]
    # A wakes up and writes its counters back: refused, B's stay, and A stops delivering
    mine_a = manager(a).document("", SUB)
    assert mine_a is not None and mine_a["notification"]["timesSent"] == 2
    await manager(a).ledger.flush()
    assert (await store(a).get_record("", "subscriptions", SUB))["notification"] == written
    # (B may also send again what A had queued: at least once, subscriptions.pending)
    await set_power(a, 1, 4)  # written through A: only B, the owner, notifies it
    await until(lambda: 4 in powers(receiver, "s"))
    await settle()
    assert powers(receiver, "s").count(4) == 1


async def test_a_change_committed_before_a_subscription_does_not_notify_it(
        deployment, receiver) -> None:
    a = await deployment.broker()
    b = await deployment.broker(poll_interval=3600.0)  # reads its feed when told to
    assert (await a.post(ENTITIES, json=lamp(0), headers=LD)).status == 201
    await set_power(a, 1, 1)
    # created through B, which owns it at once, before B has read A's two changes
    assert (await b.post(SUBS, json=subscription(receiver.url("s")), headers=LD)).status == 201
    assert await store(b).lease_holders(SUBSCRIPTION) == {LEASE: node(b).origin}

    async def read_through(count: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while node(b).received < count and loop.time() < deadline:
            await node(b).catch_up()  # MongoDB: the change stream fills the feed meanwhile
            await asyncio.sleep(0.02)
        assert node(b).received >= count

    await read_through(2)
    await settle()
    assert powers(receiver, "s") == []  # older than the subscription: not notified
    await set_power(a, 1, 2)  # after the subscription: notified, through B's feed
    await read_through(3)
    await until(lambda: powers(receiver, "s") == [2])
    await settle()
    assert powers(receiver, "s") == [2]
