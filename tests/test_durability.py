"""A write the broker acknowledged survives kill -9 of the broker (embedded SQLite store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.client import Client, entity_path
from conformance.process import BrokerProcess

pytestmark = pytest.mark.slow


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/durable.db"
    acknowledged: list[str] = []
    broker = BrokerProcess(store).start()
    try:
        client = Client(broker.url)
        for n in range(200):
            entity = {
                "id": f"urn:ngsi-ld:Lamp:{n}",
                "type": "Lamp",
                "power": {"type": "Property", "value": n},
            }
            if n % 3 == 0:  # batches too
                reply = client.post("/ngsi-ld/v1/entityOperations/upsert", [entity])
                assert reply.status in (201, 204)
            else:
                assert client.post("/ngsi-ld/v1/entities", entity).status == 201
            acknowledged.append(entity["id"])
        assert (
            client.patch(
                entity_path("urn:ngsi-ld:Lamp:1") + "/attrs",
                {"power": {"type": "Property", "value": -1}},
            ).status
            == 204
        )
        tenant = {"NGSILD-Tenant": "durable"}
        assert (
            client.post(
                "/ngsi-ld/v1/entities", {"id": "urn:ngsi-ld:Lamp:t", "type": "Lamp"}, headers=tenant
            ).status
            == 201
        )
    finally:
        broker.kill()  # SIGKILL right after the last acknowledgement

    with BrokerProcess(store) as again:
        client = Client(again.url)
        for n, entity_id in enumerate(acknowledged):
            reply = client.get(entity_path(entity_id))
            assert reply.status == 200, entity_id
            assert reply.json["power"]["value"] == (-1 if n == 1 else n)
        assert client.get(entity_path("urn:ngsi-ld:Lamp:t"), headers=tenant).status == 200


def test_subscriptions_survive_a_restart(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/subs.db"
    subscription = {
        "id": "urn:ngsi-ld:Subscription:durable",
        "type": "Subscription",
        "entities": [{"type": "Lamp"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
    }
    with BrokerProcess(store) as broker:
        client = Client(broker.url)
        assert client.post("/ngsi-ld/v1/subscriptions", subscription).status == 201
        broker.kill()
    with BrokerProcess(store) as again:
        reply = Client(again.url).get("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:durable")
        assert reply.status == 200
        assert reply.json["entities"] == [{"type": "Lamp"}]
