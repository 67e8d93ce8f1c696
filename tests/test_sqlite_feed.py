"""The change feed and leases of the SQLite store, with two stores on one file (two processes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.cluster import ClusterNode
from broker.events import ChangeBus
from ngsi_ld.changes import ChangeEvent, diff
from storage import SqliteStore
from storage.base import ContextRecord
from storage.sharing import CONTEXT, ENTITY, RECORD, shared
from subscriptions.ownership import LeaseOwner


def lamp(power: int) -> dict:
    return {"id": "urn:ngsi-ld:Lamp:1", "type": ["https://ex.org/Lamp"],
            "attrs": {"https://ex.org/power": [{"type": "Property", "value": power}]}}


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    a, b = SqliteStore(tmp_path / "f.db"), SqliteStore(tmp_path / "f.db")
    a.share("a")
    b.share("b")
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


async def test_a_store_is_shared_only_when_it_can_be(tmp_path: Path) -> None:
    from storage import MemoryStore

    assert shared(SqliteStore(tmp_path / "x.db")) is not None
    assert shared(MemoryStore()) is None


async def test_the_other_process_reads_every_committed_change_in_order(pair) -> None:
    a, b = pair
    start = await b.feed_head()
    await a.modify("", "urn:ngsi-ld:Lamp:1", lambda _: lamp(1))
    await a.modify("", "urn:ngsi-ld:Lamp:1", lambda old: lamp(2))
    await b.modify("", "urn:ngsi-ld:Lamp:2", lambda _: {**lamp(3), "id": "urn:ngsi-ld:Lamp:2"})
    await a.put_record("t1", "subscriptions", "urn:s:1", {"id": "urn:s:1"})
    await a.delete_record("t1", "subscriptions", "urn:s:1")
    await a.put_context(ContextRecord("http://x/c", "Hosted", {"@context": {}}, "2026-01-01"))

    def refuse(_: object) -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError):  # a write that fails leaves no trace in the feed
        await a.modify("", "urn:ngsi-ld:Lamp:1", refuse)
    items, position, missed = await b.read_feed(start)
    assert missed == 0
    assert [(i.origin, i.kind, i.tenant, i.collection, i.key) for i in items] == [
        ("a", ENTITY, "", "", "urn:ngsi-ld:Lamp:1"),
        ("a", ENTITY, "", "", "urn:ngsi-ld:Lamp:1"),
        ("a", RECORD, "t1", "subscriptions", "urn:s:1"),
        ("a", RECORD, "t1", "subscriptions", "urn:s:1"),
        ("a", CONTEXT, "", "", "http://x/c"),
    ]
    assert items[0].before is None and items[0].after == lamp(1)
    assert items[1].before == lamp(1) and items[1].after == lamp(2)
    # B's own write is not given back to B, but A sees it
    own, _, _ = await a.read_feed(start)
    assert [i.key for i in own] == ["urn:ngsi-ld:Lamp:2"]
    assert await b.read_feed(position) == ([], position, 0)


async def test_trimmed_items_are_reported_as_missed(pair) -> None:
    a, b = pair
    start = await b.feed_head()
    await a.modify("", "urn:ngsi-ld:Lamp:1", lambda _: lamp(1))
    await a.modify("", "urn:ngsi-ld:Lamp:1", lambda _: lamp(2))
    assert await a.trim_feed(time.time() + 1) == 2
    items, position, missed = await b.read_feed(start)
    assert items == [] and missed == 2 and position == start + 2


async def test_a_lease_has_one_holder_until_it_expires_or_is_released(pair) -> None:
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


async def test_leases_share_subscriptions_fairly(pair) -> None:
    a, b = pair
    keys = [f"t\x00urn:s:{n}" for n in range(10)]
    first, second = LeaseOwner(a, "a", ttl=5), LeaseOwner(b, "b", ttl=5)
    await second.store.acquire_lease("process:b", "b", 5)  # B is alive
    gained_a, lost_a = await first.round(keys, set())
    gained_b, lost_b = await second.round(keys, set())
    assert len(gained_a) == 5 and gained_b == set(keys) - gained_a
    assert lost_a == lost_b == set()
    await first.close()  # A stops: its subscriptions are free for B
    gained, _ = await second.round(keys, gained_b)
    assert gained == gained_a


async def test_the_node_publishes_other_processes_changes_on_the_local_bus(pair) -> None:
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
    try:
        await a.modify("", "urn:ngsi-ld:Lamp:1", lambda _: lamp(1))
        await a.modify("", "urn:ngsi-ld:Lamp:1", lambda _: lamp(2))
        await b.modify("", "urn:ngsi-ld:Lamp:1", lambda _: lamp(3))  # B's own: not echoed
        await a.put_record("", "subscriptions", "urn:s:1", {"id": "urn:s:1"})
        await a.put_record("", "registrations", "urn:r:1", {"id": "urn:r:1"})
        await a.delete_context("http://nothing")  # nothing deleted: no item
        await a.put_context(ContextRecord("http://x/c", "Hosted", {"@context": {}}, "2026"))
        deadline = time.monotonic() + 5
        while not contexts and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        await node.close()
    assert events == [diff("", None, lamp(1)), diff("", lamp(1), lamp(2))]
    assert records == [("", "urn:s:1")] and contexts == ["http://x/c"]
    assert node.received == 5
