"""Updating a subscription that covers sources (5.8.2 with 5.8.1.4) updates its copies: a
copy is PATCHed at its source (members removed sent as null), a source the subscription
covers no more loses its copy, one it covers now gets one, and a copy the source lost is
made again; deleting the subscription still deletes them (5.8.5.4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from notify_receiver import Receiver
from test_federation_copies_later import stored_copies
from test_federation_copies_restart import (
    API,
    JSON,
    LAMP,
    copies_at,
    free_port,
    hub_on,
    register,
    source_holding,
    subscribe_lamps,
)

from broker.app import BROKER

BENCH = "urn:ngsi-ld:Bench:1"


async def copy_where(source: TestClient, test: Any) -> dict[str, Any]:
    """The source's one copy once ``test`` holds of it (copies change in the background)."""
    found: list[Any] = []
    for _ in range(200):
        found = await (await source.get(API + "/subscriptions")).json()
        if len(found) == 1 and test(found[0]):
            return dict(found[0])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no copy as expected at the source: {found}")


@pytest.fixture
async def sources() -> AsyncIterator[tuple[TestClient, TestClient]]:
    made = []
    for entity in ({"id": LAMP, "type": "Lamp", "power": {"type": "Property", "value": 1}},
                   {"id": BENCH, "type": "Bench", "power": {"type": "Property", "value": 1}}):
        made.append(await source_holding(entity))
    yield made[0], made[1]
    for source in made:
        await source.close()


async def test_an_update_of_the_subscription_updates_its_copies(
        tmp_path: Path, sources: tuple[TestClient, TestClient]) -> None:
    lamps, benches = sources
    receiver = await Receiver().start()
    hub = await hub_on(tmp_path / "hub.db", free_port())
    try:
        for source, kind in ((lamps, "Lamp"), (benches, "Bench")):
            await register(hub, source, kind)
        location = await subscribe_lamps(hub, receiver)
        sub_id = location.rsplit("/", 1)[-1]
        (first,) = await copies_at(lamps, 1)
        assert first["q"] == "power>5"

        # q, isActive, expiresAt and watchedAttributes changed: the copy is PATCHed in place
        patched = await hub.patch(location, headers=JSON, json={
            "q": "power>7", "isActive": False, "expiresAt": "2099-01-01T00:00:00Z",
            "watchedAttributes": ["power"]})
        assert patched.status == 204, await patched.text()
        copy = await copy_where(lamps, lambda c: c.get("q") == "power>7")
        assert copy["id"] == first["id"]
        assert copy["isActive"] is False and copy["status"] == "paused"
        assert copy["expiresAt"].startswith("2099-01-01T00:00:00")
        assert copy["watchedAttributes"] == ["power"]
        # a member removed (null) is removed from the copy too
        patched = await hub.patch(location, headers=JSON, json={
            "isActive": True, "watchedAttributes": None})
        assert patched.status == 204
        copy = await copy_where(lamps, lambda c: c.get("isActive") is True)
        assert "watchedAttributes" not in copy and copy["q"] == "power>7"
        assert (await benches.get(API + "/subscriptions")).status == 200
        assert await (await benches.get(API + "/subscriptions")).json() == []

        # the source filters with the new q: 6 is not notified, 9 is
        for value in (6, 9):
            changed = await lamps.patch(f"{API}/entities/{LAMP}/attrs", headers=JSON,
                                        json={"power": {"type": "Property", "value": value}})
            assert changed.status == 204
        (notification, *_) = await receiver.wait_for(1, timeout=10)
        assert notification.body["subscriptionId"] == sub_id
        assert [b["data"][0]["power"]["value"] for b in receiver.bodies()] == [9]

        # other entities: the Lamps' source loses its copy, the Benches' one gets one
        patched = await hub.patch(location, headers=JSON, json={
            "entities": [{"type": "Bench"}]})
        assert patched.status == 204
        assert await copies_at(lamps, 0) == []
        (bench_copy,) = await copies_at(benches, 1)
        assert bench_copy["q"] == "power>7"
        assert bench_copy["entities"] == [{"type": "Bench"}]
        store = hub.server.app[BROKER].service.store
        record = await stored_copies(store, 1)
        assert [c["id"] for c in record["copies"].values()] == [bench_copy["id"]]
        assert record["body"]["entities"] == [{"type": "Bench"}]

        # a copy the source lost is made again by the next update
        gone = await benches.delete(f"{API}/subscriptions/{bench_copy['id']}")
        assert gone.status == 204
        patched = await hub.patch(location, headers=JSON, json={"q": "power>8"})
        assert patched.status == 204
        again = await copy_where(benches, lambda c: c.get("q") == "power>8")
        assert again["id"] != bench_copy["id"]

        # deleting the subscription deletes the copy
        assert (await hub.delete(location)).status == 204
        assert await copies_at(benches, 0) == []
        assert await copies_at(lamps, 0) == []
    finally:
        await hub.close()
        await receiver.close()


async def test_a_local_only_subscription_made_distributed_gets_its_copies(
        tmp_path: Path, sources: tuple[TestClient, TestClient]) -> None:
    lamps, _ = sources
    receiver = await Receiver().start()
    hub = await hub_on(tmp_path / "hub.db", free_port())
    try:
        await register(hub, lamps, "Lamp")
        created = await hub.post(API + "/subscriptions", headers=JSON, json={
            "type": "Subscription", "entities": [{"type": "Lamp"}], "localOnly": True,
            "notification": {"endpoint": {"uri": receiver.url()}}})
        assert created.status == 201
        location = created.headers["Location"]
        await asyncio.sleep(0.2)  # what it would send in the background
        assert await copies_at(lamps, 0) == []
        assert (await hub.patch(location, headers=JSON, json={"localOnly": False})).status == 204
        (copy,) = await copies_at(lamps, 1)
        assert copy["entities"] == [{"type": "Lamp"}]
        assert (await hub.patch(location, headers=JSON, json={"localOnly": True})).status == 204
        assert await copies_at(lamps, 0) == []
    finally:
        await hub.close()
        await receiver.close()
