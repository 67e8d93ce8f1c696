"""The change feed and leases of the SQLite store, with two stores on one file (two processes)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sharing_contract import LeaseContract, NodeContract

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


class TestSqliteNode(NodeContract):
    """The cluster node's contract (tests/sharing_contract.py) on this backend's ``pair``."""
