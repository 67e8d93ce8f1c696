"""What every SharedStore must do the same way (storage/sharing.py), whatever the
backend: grant leases, and feed the changes a ClusterNode (broker/cluster.py) publishes.
Two stores on one file or one server play two broker processes.

Subclasses provide the ``pair`` fixture: two open stores sharing their data, one
per process (tests/test_sqlite_feed.py, tests/test_mongo_feed.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from broker.cluster import ClusterNode
from broker.events import ChangeBus
from ngsi_ld.changes import ChangeEvent, diff
from storage.base import ContextRecord
from storage.sharing import Fence
from subscriptions.ownership import LeaseOwner

LAMP = "urn:ngsi-ld:Lamp:1"


def _lamp(power: int) -> dict[str, Any]:
    return {"id": LAMP, "type": ["https://ex.org/Lamp"],
            "attrs": {"https://ex.org/power": [{"type": "Property", "value": power}]}}


class LeaseContract:
    """Leases: one holder at a time, expiry, release, and fair sharing by LeaseOwner."""

    async def test_a_lease_has_one_holder_until_it_expires_or_is_released(
            self, pair: tuple[Any, Any]) -> None:
        a, b = pair
        assert await a.acquire_lease("sub:1", "a", 0.3)
        assert not await b.acquire_lease("sub:1", "b", 0.3)
        assert await a.acquire_lease("sub:1", "a", 0.3)  # ours: renewed
        assert await a.lease_holders("sub:") == {"sub:1": "a"}
        assert await a.renew_leases("a", 0.3) == ["sub:1"]
        await asyncio.sleep(0.4)
        assert await a.lease_holders("sub:") == {}
        assert await b.acquire_lease("sub:1", "b", 5)  # expired: B takes it over
        assert await a.renew_leases("a", 5) == []  # and A learns it lost it
        await b.release_leases("b", ["sub:1"])
        assert await a.acquire_lease("sub:1", "a", 5)
        await b.drop_lease("sub:1")
        assert await b.lease_holders("") == {}

    async def test_leases_share_subscriptions_fairly(self, pair: tuple[Any, Any]) -> None:
        a, b = pair
        keys = [f"t\x00urn:s:{n}" for n in range(10)]
        first, second = LeaseOwner(a, "a", ttl=5), LeaseOwner(b, "b", ttl=5)
        await b.acquire_lease("process:b", "b", 5)  # B is alive
        gained_a, lost_a = await first.round(keys, set())
        gained_b, lost_b = await second.round(keys, set())
        assert len(gained_a) == 5 and gained_b == set(keys) - gained_a
        assert lost_a == lost_b == set()
        await first.close()  # A stops: its subscriptions are free for B
        gained, _ = await second.round(keys, gained_b)
        assert gained == gained_a

    async def test_a_write_fenced_by_a_lease_is_refused_once_the_lease_changed_hands(
            self, pair: tuple[Any, Any]) -> None:
        a, b = pair
        name, sub = "subscription:t\x00urn:s:1", "urn:s:1"
        await a.put_record("t", "subscriptions", sub, {"id": sub, "timesSent": 0})
        assert await a.acquire_lease(name, "a", 5)
        first = Fence(name, "a", await a.lease_epoch(name, "a"))
        assert await b.lease_epoch(name, "b") is None  # B does not hold it
        assert await a.put_fenced("t", "subscriptions", sub, {"id": sub, "timesSent": 1}, first)
        assert await a.acquire_lease(name, "a", -1)  # A pauses past its lease...
        assert await b.acquire_lease(name, "b", 5)  # ...and B takes it over
        second = Fence(name, "b", await b.lease_epoch(name, "b"))
        assert second.epoch == first.epoch + 1
        assert await b.put_fenced("t", "subscriptions", sub, {"id": sub, "timesSent": 2}, second)
        # A wakes up: its write is refused and B's counters stay
        assert not await a.put_fenced("t", "subscriptions", sub,
                                      {"id": sub, "timesSent": 9}, first)
        assert await a.get_record("t", "subscriptions", sub) == {"id": sub, "timesSent": 2}
        # A released lease taken again starts over at epoch 1: the owner tells them apart
        await b.release_leases("b")
        assert await a.acquire_lease(name, "a", 5)
        assert not await b.put_fenced("t", "subscriptions", sub, {"id": sub}, second)
        again = Fence(name, "a", await a.lease_epoch(name, "a"))
        assert await a.put_fenced("t", "subscriptions", sub, {"id": sub, "timesSent": 3}, again)
        # a fenced write never brings back a deleted record
        await b.delete_record("t", "subscriptions", sub)
        assert not await a.put_fenced("t", "subscriptions", sub, {"id": sub}, again)
        assert await b.get_record("t", "subscriptions", sub) is None


class NodeContract:
    """The cluster node over the feed: other processes' changes on the local bus."""

    async def test_the_node_publishes_other_processes_changes_on_the_local_bus(
            self, pair: tuple[Any, Any]) -> None:
        a, b = pair
        bus = ChangeBus()
        events: list[ChangeEvent] = []
        bus.subscribe(events.append)
        records: list[tuple[str, str]] = []
        contexts: list[str] = []

        async def on_record(tenant: str, key: str) -> None:
            records.append((tenant, key))

        node = ClusterNode(b, bus, contexts.append, origin="b", poll_interval=0.01)
        node.on_record("subscriptions", on_record)
        await node.begin()
        node.start()
        before = await a.feed_mark()
        try:
            await a.modify("", LAMP, lambda _: _lamp(1))
            await a.modify("", LAMP, lambda _: _lamp(2))
            await b.modify("", LAMP, lambda _: _lamp(3))  # B's own: not echoed
            await a.put_record("", "subscriptions", "urn:s:1", {"id": "urn:s:1"})
            await a.put_record("", "registrations", "urn:r:1", {"id": "urn:r:1"})
            await a.delete_context("http://nothing")  # nothing deleted: no item
            await a.put_context(ContextRecord("http://x/c", "Hosted", {"@context": {}}, "2026"))
            deadline = time.monotonic() + 10
            while not contexts and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            await node.close()
        # each with the mark of its commit: after a mark read before, in commit order
        assert [replace(e, mark=None) for e in events] == [
            diff("", None, _lamp(1)), diff("", _lamp(1), _lamp(2))]
        first, second = (event.mark for event in events)
        assert first is not None and second is not None
        assert before < first < second <= await a.feed_mark()
        assert records == [("", "urn:s:1")] and contexts == ["http://x/c"]
        assert node.received == 5
