"""The SharedStore capability of the MongoDB store: the change feed and the leases.

Two stores on one server play two broker processes.  ``mongodb-stand-in``: both
on one MongoDB stand-in client (tests/mongo_standin.py, its change streams in
tests/mongo_standin_streams.py), always; ``mongodb-real``: both on the replica
set ``NGSI_LD_TEST_MONGODB_URL`` names, when it is set (docs/mongodb.md).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mongo_standin import OneServer, StandInClient
from sharing_contract import LeaseContract, NodeContract

from storage.base import ContextRecord
from storage.mongo import MongoStore
from storage.mongo.feed import SharingUnsupported, watch_pipeline
from storage.sharing import CONTEXT, ENTITY, RECORD, FeedItem, Fence, shared

MONGODB_URL = os.environ.get("NGSI_LD_TEST_MONGODB_URL")
REAL = pytest.param("mongodb-real", marks=pytest.mark.skipif(
    MONGODB_URL is None,
    reason="no MongoDB replica set: set NGSI_LD_TEST_MONGODB_URL=mongodb://host:27017/"
           "?replicaSet=rs0 to run"))
LAMP = "urn:ngsi-ld:Lamp:1"


def lamp(power: int, n: int = 1) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lamp:{n}", "type": ["https://ex.org/Lamp"],
            "attrs": {"https://ex.org/power": [{"type": "Property", "value": power}]}}


class Server(OneServer):
    """One stand-in client for every store (one server), or the real replica set."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.database = f"ngsild_test_{uuid.uuid4().hex[:12]}"
        self.stores: list[MongoStore] = []

    async def store(self, origin: str) -> MongoStore:
        if self.kind == "mongodb-stand-in":
            store = MongoStore("mongodb://stand-in/", database=self.database,
                               client_factory=self.factory)
        else:
            assert MONGODB_URL is not None
            store = MongoStore(MONGODB_URL, database=self.database)
        store.share(origin)
        await store.open()
        self.stores.append(store)
        return store

    async def close(self) -> None:
        if self.kind == "mongodb-real" and self.stores:
            await self.stores[0].drop_databases()
        for store in self.stores:
            await store.close()


@pytest.fixture(params=["mongodb-stand-in", REAL])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    found = Server(request.param)
    yield found
    await found.close()


@pytest.fixture
async def pair(server: Server) -> tuple[MongoStore, MongoStore]:
    a, b = await server.store("a"), await server.store("b")
    await a.feed_head()
    await b.feed_head()
    return a, b


async def read_until(store: MongoStore, start: int, count: int) -> list[FeedItem]:
    """The feed items after ``start`` once there are ``count`` (the stream is asynchronous)."""
    deadline = time.monotonic() + 10
    while True:
        items, _, missed = await store.read_feed(start)
        assert missed == 0
        if len(items) >= count or time.monotonic() > deadline:
            return items
        await asyncio.sleep(0.01)


def test_the_stream_is_filtered_on_the_server() -> None:
    assert watch_pipeline("orion", "host:1:ab") == [{"$match": {
        "ns.db": {"$regex": "^orion(-|$)"},
        "ns.coll": {"$nin": ["tenants", "discoveryStats", "temporal_entities",
                             "temporal_instances", "temporal_outbox", "feeds", "leases"]},
        "operationType": {"$in": ["insert", "replace", "delete"]},
        "fullDocument.origin": {"$ne": "host:1:ab"},
    }}]


async def test_a_mongodb_store_is_a_shared_store() -> None:
    assert shared(MongoStore("mongodb://h/db", client_factory=StandInClient)) is not None


async def test_sharing_turns_on_pre_images_and_opens_one_stream() -> None:
    server = Server("mongodb-stand-in")
    a = await server.store("a")
    await a.feed_head()
    await a.modify("t1", LAMP, lambda _: lamp(1))  # a tenant database of its own
    try:
        assert server.client is not None
        calls = server.client.calls
        mods = [(c.database, c.args, c.kwargs) for c in calls if c.method == "command"
                and c.args[0] in ("collMod", "create")]
        option = {"changeStreamPreAndPostImages": {"enabled": True}}
        assert (server.database, ("collMod", "entities"), option) in mods
        assert (server.database, ("create", "entities"), option) in mods
        assert (f"{server.database}-t1", ("create", "entities"), option) in mods
        watches = [c for c in calls if c.method == "watch"]
        assert len(watches) == 1
        assert watches[0].args == (watch_pipeline(server.database, "a"),)
        assert watches[0].kwargs == {"full_document": "updateLookup", "resume_after": None,
                                     "start_after": None,
                                     "full_document_before_change": "whenAvailable"}
        stored = await a.get_entity("t1", LAMP)
        assert stored == lamp(1)  # the origin stamp is not part of the entity
    finally:
        await server.close()


async def test_the_other_process_reads_every_committed_change_in_order(pair) -> None:
    a, b = pair
    start = await b.feed_head()
    await a.modify("", LAMP, lambda _: lamp(1))
    await a.modify("", LAMP, lambda old: lamp(2))
    await b.modify("", "urn:ngsi-ld:Lamp:2", lambda _: lamp(3, 2))  # B's own: not echoed
    await a.put_record("t1", "subscriptions", "urn:s:1", {"id": "urn:s:1"})
    await a.delete_record("t1", "subscriptions", "urn:s:1")
    await a.put_context(ContextRecord("http://x/c", "Hosted", {"@context": {}}, "2026-01-01"))
    await a.modify("", LAMP, lambda _: None)

    def refuse(_: object) -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError):  # a write that fails leaves no trace in the feed
        await a.modify("", "urn:ngsi-ld:Lamp:2", refuse)
    items = await read_until(b, start, 6)
    assert [(i.kind, i.tenant, i.collection, i.key) for i in items] == [
        (ENTITY, "", "", LAMP),
        (ENTITY, "", "", LAMP),
        (RECORD, "t1", "subscriptions", "urn:s:1"),
        (RECORD, "t1", "subscriptions", "urn:s:1"),
        (CONTEXT, "", "", "http://x/c"),
        (ENTITY, "", "", LAMP),
    ]
    assert items[0].before is None and items[0].after == lamp(1)
    assert items[1].before == lamp(1) and items[1].after == lamp(2)
    assert items[-1].before == lamp(2) and items[-1].after is None  # the pre-image
    # a record's deletion names no process: it comes back to its own process too, whose
    # handler finds nothing to do (the record is gone already)
    own = await read_until(a, start, 2)
    assert [(i.kind, i.key, i.after) for i in own] == [
        (ENTITY, "urn:ngsi-ld:Lamp:2", lamp(3, 2)), (RECORD, "urn:s:1", None)]


async def test_a_batch_is_fed_entity_by_entity_and_own_deletions_are_not(pair) -> None:
    a, b = pair
    start_a, start_b = await a.feed_head(), await b.feed_head()
    await a.modify_many("", [(LAMP, lambda _: lamp(1)),
                             ("urn:ngsi-ld:Lamp:2", lambda _: lamp(2, 2))])
    await a.modify_many("", [(LAMP, lambda _: None), ("urn:ngsi-ld:Lamp:2", lambda _: None)])
    await b.modify("", "urn:ngsi-ld:Lamp:3", lambda _: lamp(3, 3))  # a marker from B
    items = await read_until(b, start_b, 4)
    assert [(i.key, i.before is None, i.after is None) for i in items] == [
        (LAMP, True, False), ("urn:ngsi-ld:Lamp:2", True, False),
        (LAMP, False, True), ("urn:ngsi-ld:Lamp:2", False, True)]
    seen_by_a = await read_until(a, start_a, 1)
    assert [i.key for i in seen_by_a] == ["urn:ngsi-ld:Lamp:3"]  # not A's own deletions


async def test_a_deletion_lost_to_the_other_process_is_fed_once(pair) -> None:
    a, b = pair
    start = await a.feed_head()
    await a.modify("", LAMP, lambda _: lamp(1))
    await b.modify("", LAMP, lambda _: None)  # B deletes it first
    await a.modify("", LAMP, lambda old: None)  # A finds nothing left to delete
    items = await read_until(a, start, 1)
    assert [(i.key, i.before, i.after) for i in items] == [(LAMP, lamp(1), None)]


class TestMongoLeases(LeaseContract):
    """The lease contract (tests/sharing_contract.py) on this backend's ``pair``."""


class TestMongoNode(NodeContract):
    """The cluster node's contract (tests/sharing_contract.py) on this backend's ``pair``."""


async def test_the_lease_writes_are_conditional() -> None:
    server = Server("mongodb-stand-in")
    a = await server.store("a")
    try:
        assert server.client is not None
        server.client.calls.clear()
        assert await a.acquire_lease("sub:1", "a", 30)
        renewal, claim = [c for c in server.client.calls if c.method == "find_one_and_update"]
        assert renewal.collection == "leases" and renewal.database == server.database
        flt, update, _ = renewal.args
        assert set(flt) == {"_id", "owner", "until"} and flt["owner"] == "a"
        assert list(flt["until"]) == ["$gte"] and list(update) == ["$set"]
        flt, update, _ = claim.args
        assert set(flt) == {"_id", "until"} and list(flt["until"]) == ["$lt"]
        assert update["$inc"] == {"epoch": 1} and update["$set"]["owner"] == "a"
        assert claim.kwargs["upsert"] is True
        # the epoch counts the hands the lease went through (fencing)
        lease = await a.client[server.database]["leases"].find_one({"_id": "sub:1"})
        assert lease["epoch"] == 1 and lease["owner"] == "a"
        assert await a.acquire_lease("sub:1", "a", 30)  # renewed: same epoch
        lease = await a.client[server.database]["leases"].find_one({"_id": "sub:1"})
        assert lease["epoch"] == 1
        indexes = [c for c in server.client.calls if c.method == "create_index"
                   and c.collection == "leases"]
        assert indexes[0].args == ([("until", 1)],)
        assert indexes[0].kwargs == {"name": "lease_expiry", "expireAfterSeconds": 86400}
    finally:
        await server.close()


@pytest.mark.parametrize(("options", "message"), [
    ({"standalone": True}, "this server is standalone"),
    ({"version": (5, 0)}, "need MongoDB 6.0 or later"),
])
async def test_sharing_a_server_without_change_streams_is_refused(options, message) -> None:
    def factory(url: str, **kw: Any) -> StandInClient:
        return StandInClient(url, **options, **kw)

    store = MongoStore("mongodb://stand-in/orion", client_factory=factory)
    store.share("a")
    await store.open()
    try:
        with pytest.raises(SharingUnsupported, match=message):
            await store.feed_head()
    finally:
        await store.close()


async def test_the_stream_resumes_from_its_token_after_a_failure(pair, server) -> None:
    if server.kind != "mongodb-stand-in":
        pytest.skip("the failure is played by the stand-in")
    a, b = pair
    start = await b.feed_head()
    await a.modify("", LAMP, lambda _: lamp(1))
    assert len(await read_until(b, start, 1)) == 1
    await b._feed.save_token()  # type: ignore[union-attr]
    client = server.client
    saved = await client[server.database]["feeds"].find_one({"_id": "b"})
    inserted = [e for e in client.changes.events if e["ns"]["coll"] == "entities"]
    assert saved["token"] == inserted[-1]["_id"]  # the last event B handled
    client.go_down()
    await asyncio.sleep(0.05)  # B's stream fails meanwhile
    client.come_back()
    await a.modify("", LAMP, lambda _: lamp(2))
    await a.modify("", LAMP, lambda _: lamp(3))
    items = await read_until(b, start, 3)
    assert [i.after for i in items] == [lamp(1), lamp(2), lamp(3)]  # none twice, none lost
    watches = [c for c in client.calls if c.method == "watch" and c.args[0][0]["$match"][
        "fullDocument.origin"] == {"$ne": "b"}]
    assert len(watches) == 2 and watches[1].kwargs["resume_after"] is not None


async def test_trimmed_changes_are_reported_as_missed(pair) -> None:
    a, b = pair
    start = await b.feed_head()
    await a.modify("", LAMP, lambda _: lamp(1))
    await a.modify("", LAMP, lambda _: lamp(2))
    assert len(await read_until(b, start, 2)) == 2
    assert await b.trim_feed(time.time() + 1) == 2
    items, position, missed = await b.read_feed(start)
    assert items == [] and missed == 2 and position == start + 2


async def test_a_fenced_write_updates_the_lease_filtered_on_its_epoch_in_a_transaction(
) -> None:
    server = Server("mongodb-stand-in")
    a = await server.store("a")
    try:
        assert server.client is not None
        name, sub = "subscription:\x00urn:s:1", "urn:s:1"
        await a.put_record("", "subscriptions", sub, {"id": sub})
        assert await a.acquire_lease(name, "a", 30)
        server.client.calls.clear()
        assert await a.put_fenced("", "subscriptions", sub, {"id": sub, "n": 1},
                                  Fence(name, "a", 1))
        fence, write = [c for c in server.client.calls
                        if c.method in ("update_one", "replace_one")]
        assert (fence.method, fence.collection) == ("update_one", "leases")
        flt, update = fence.args
        assert flt == {"_id": name, "owner": "a", "epoch": 1}
        assert list(update) == ["$set"]
        assert (write.method, write.collection) == ("replace_one", "subscriptions")
        assert write.args[0] == {"_id": sub} and "upsert" not in write.kwargs
        # both in ONE transaction, committed
        session = fence.kwargs["session"]
        assert write.kwargs["session"] is session and session.committed == 1
        server.client.calls.clear()
        # a stale epoch: the lease update matches nothing, the record is not written
        assert not await a.put_fenced("", "subscriptions", sub, {"id": sub, "n": 2},
                                      Fence(name, "a", 0))
        assert [c.method for c in server.client.calls
                if c.method in ("update_one", "replace_one")] == ["update_one"]
        assert await a.get_record("", "subscriptions", sub) == {"id": sub, "n": 1}
    finally:
        await server.close()


async def test_the_mark_is_the_operation_time_of_a_read_and_events_carry_theirs(
        pair, server) -> None:
    a, b = pair
    before = await b.feed_mark()
    start = await b.feed_head()
    await a.modify("", LAMP, lambda _: lamp(1))
    items = await read_until(b, start, 1)
    after = await b.feed_mark()
    assert len(items) == 1 and before < items[0].mark <= after
    if server.kind == "mongodb-stand-in":
        assert server.client is not None
        ping = [c for c in server.client.calls if c.method == "command"
                and c.args[0] == "ping"][-1]
        assert ping.database == server.database
