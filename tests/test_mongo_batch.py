"""Batches on MongoDB (storage/mongo/batch.py), on the stand-in server.

One unordered bulk write per batch, failures mapped to their entities, and races
between two broker processes (two stores on one stand-in server) that lose nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from storage_contract import P, T, add_attr, create, delete, entity
from test_mongo_store import Server, _store

from ngsi_ld.errors import BadRequestData
from storage.mongo import MongoStore


@pytest.fixture
def server() -> Server:
    return Server()


async def test_batch_is_one_unordered_bulk_write(server: Server) -> None:
    store = await _store(server)
    await store.modify("", "urn:old", create(entity("urn:old", p=0)))
    await store.modify("", "urn:gone", create(entity("urn:gone")))
    server.calls.clear()
    outcomes = await store.modify_many(
        "",
        [
            ("urn:new", create(entity("urn:new", p=1))),
            ("urn:old", add_attr("q", 1)),
            ("urn:gone", delete),
            ("urn:none", delete),
        ],
    )
    assert [o.error is None for o in outcomes] == [True, True, True, False]
    bulk, counters = [c for c in server.calls if c.method == "bulk_write"]
    assert (bulk.collection, bulk.kwargs) == ("entities", {"ordered": False, "session": None})
    kinds = [(kind, args.get("filter")) for kind, args in bulk.args[0]]
    assert kinds == [
        ("insert_one", None),
        ("replace_one", {"_id": "urn:old", "version": 1}),
        ("delete_one", {"_id": "urn:gone", "version": 1}),
    ]
    # the discovery counters: the batch's changes summed into one bulk write of $inc
    # upserts (an entity of T created and one deleted: its entity count is unchanged)
    assert (counters.collection, counters.kwargs) == ("discoveryStats", {"ordered": False})
    q = "https://example.org/q"
    assert [(args["filter"], args["update"]["$inc"], args["upsert"])
            for _, args in counters.args[0]] == [
        ({"_id": f"\n{P}\nProperty"}, {"n": 1}, True),
        ({"_id": f"\n{q}\nProperty"}, {"n": 1}, True),
        ({"_id": f"{T}\n{P}\nProperty"}, {"n": 1}, True),
        ({"_id": f"{T}\n{q}\nProperty"}, {"n": 1}, True),
    ]
    (p,) = await store.attribute_summaries("", [P])
    assert (p.instance_count, p.type_names) == (2, {T})


async def test_bulk_write_errors_are_reported_per_entity(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write MongoDB refuses (here: a document over 16 MB) fails that entity only."""
    from mongo_standin import StandInCollection
    from pymongo.errors import BulkWriteError

    original = StandInCollection.bulk_write

    async def refuse_second(self: StandInCollection, requests: Any, **kw: Any) -> Any:
        ops = list(requests)
        if self.name != "entities":  # the discovery counters
            return await original(self, ops, **kw)
        result = await original(self, [op for i, op in enumerate(ops) if i != 1], **kw)
        details = dict(result.bulk_api_result)
        details["writeErrors"] = [{"index": 1, "code": 10334, "errmsg": "object too large"}]
        raise BulkWriteError(details)

    store = await _store(server)
    monkeypatch.setattr(StandInCollection, "bulk_write", refuse_second)
    outcomes = await store.modify_many(
        "", [(f"urn:b:{n}", create(entity(f"urn:b:{n}", p=n))) for n in range(3)]
    )
    assert [o.error is None for o in outcomes] == [True, False, True]
    error = outcomes[1].error
    assert isinstance(error, BadRequestData) and "urn:b:1" in error.detail
    assert await store.get_entity("", "urn:b:1") is None
    assert await store.get_entity("", "urn:b:2") == entity("urn:b:2", p=2)
    # only what was written is counted
    (summary,) = await store.type_summaries("", [T])
    assert summary.entity_count == 2


async def test_batches_of_two_processes_lose_nothing(server: Server) -> None:
    first, second = await _store(server), await _store(server)
    ids = [f"urn:e:{n}" for n in range(6)]
    await first.modify_many("", [(i, create(entity(i))) for i in ids])

    async def batch(store: MongoStore, n: int) -> None:
        outcomes = await store.modify_many("", [(i, add_attr(f"b{n}", n)) for i in ids])
        assert all(o.error is None for o in outcomes)

    await asyncio.gather(*(batch(first if n % 2 else second, n) for n in range(8)))
    for i in ids:
        got = await first.get_entity("", i)
        assert got is not None and len(got["attrs"]) == 8


async def test_racing_creations_in_batches_one_wins(server: Server) -> None:
    first, second = await _store(server), await _store(server)
    results = await asyncio.gather(
        first.modify_many("", [("urn:r", create(entity("urn:r", p=1)))]),
        second.modify_many("", [("urn:r", create(entity("urn:r", p=2)))]),
    )
    errors = [o.error for outcomes in results for o in outcomes]
    assert sum(e is None for e in errors) == 1
    assert sum(e is not None and e.status == 409 for e in errors) == 1
