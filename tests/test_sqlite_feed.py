"""The change feed and leases of the SQLite store, with two stores on one file (two processes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from sharing_contract import LeaseContract

from broker.cluster import ClusterNode
from broker.events import ChangeBus
from ngsi_ld.changes import ChangeEvent, diff
from storage import SqliteStore
from storage.base import ContextRecord
from storage.sharing import CONTEXT, ENTITY, RECORD, shared


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


class TestSqliteLeases(LeaseContract):
    """The lease contract (tests/sharing_contract.py) on this backend's ``pair``."""


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
    before = await a.feed_mark()
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
    # each with the mark of its commit: after a mark read before, in commit order
    assert [replace(e, mark=None) for e in events] == [
        diff("", None, lamp(1)), diff("", lamp(1), lamp(2))]
    first, second = (event.mark for event in events)
    assert first is not None and second is not None
    assert before < first < second <= await a.feed_mark()
    assert records == [("", "urn:s:1")] and contexts == ["http://x/c"]
    assert node.received == 5
