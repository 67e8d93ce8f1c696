"""The history of an entity write commits with it on MongoDB (storage/mongo/outbox.py).

On the MongoDB stand-in (tests/mongo_standin.py; its transactions in
tests/mongo_standin_sessions.py): a replica set by default, a standalone server
with ``standalone=True``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mongo_standin import OneServer

from ngsi_ld.temporal import History, Instance, TemporalQuery, history_of_write
from storage.mongo import MongoStore
from storage.mongo.outbox import OUTBOX, decode_history, encode_history
from storage.mongo.schema import to_document

E = "urn:ngsi-ld:Lamp:1"


def lamp(power: Any) -> dict[str, Any]:
    return {"id": E, "type": ["urn:T"], "attrs": {"urn:p": [
        {"type": "Property", "value": power, "observedAt": "2026-01-01T00:00:00Z"}]}}


def record(before: Any, after: Any, new_id: Any) -> Any:
    return history_of_write(before, after, "2026-01-01T00:00:01Z", new_id)


class Server(OneServer):
    async def store(self) -> MongoStore:
        store = MongoStore("mongodb://stand-in/o", client_factory=self.factory)
        await store.open()
        return store


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    yield Server()


async def values(store: MongoStore) -> list[Any]:
    found = await store.history.read_history("", [E], None, TemporalQuery())
    return [i.value for i in found.get(E, []) if i.attribute == "urn:p"]


def test_a_history_survives_its_json_form() -> None:
    inst = Instance("urn:p", "urn:ngsi-ld:Instance:5", "Property", {"a.b": [1, "x"]},
                    observed_at="2026-01-01T00:00:00Z", members={"unitCode": "C"})
    history = History(history_of_write(None, lamp(1), "2026-01-01T00:00:01Z",
                                       lambda: "urn:ngsi-ld:Instance:9").entity, (inst,))
    assert decode_history(encode_history(history)) == history


async def test_the_write_and_its_outbox_document_are_one_transaction(server) -> None:
    store = await server.store()
    client = server.client
    assert client is not None
    client.calls.clear()
    await store.modify("", E, lambda _: lamp(1), record=record)
    (transaction,) = client.transactions
    assert transaction.committed == 1
    in_it = [(c.method, c.collection) for c in client.calls
             if c.kwargs.get("session") is transaction]
    assert in_it == [("insert_one", "entities"), ("insert_many", OUTBOX)]
    after = [(c.method, c.collection) for c in client.calls
             if c.collection in ("temporal_instances", OUTBOX) and "session" not in c.kwargs]
    # recorded after the commit, then the outbox document goes
    assert after[-2:] == [("insert_many", "temporal_instances"), ("delete_many", OUTBOX)]
    assert await values(store) == [1]
    assert await store.client["o"][OUTBOX].find_one({}) is None
    await store.close()


async def test_a_history_that_cannot_be_written_undoes_the_entity_write(server) -> None:
    store = await server.store()
    await store.modify("", E, lambda _: lamp(1), record=record)

    def unwritable(before: Any, after: Any, new_id: Any) -> Any:
        found = record(before, after, new_id)
        return History(found.entity, (Instance("urn:p", new_id(), "Property", {1, 2}),))

    with pytest.raises(TypeError):  # a set is not JSON
        await store.modify("", E, lambda _: lamp(2), record=unwritable)
    assert (await store.get_entity("", E)) == lamp(1)  # the transaction was aborted
    assert await values(store) == [1]
    assert server.client is not None and server.client.transactions[-1].aborted == 1
    await store.close()


async def test_a_batch_and_its_histories_are_one_transaction(server) -> None:
    store = await server.store()
    client = server.client
    assert client is not None
    await store.modify("", "urn:x:gone", lambda _: {**lamp(0), "id": "urn:x:gone"})
    client.calls.clear()
    outcomes = await store.modify_many("", [
        (E, lambda _: lamp(1)), (E, lambda old: lamp(2)), ("urn:x:gone", lambda _: None)],
        record=record)
    assert all(o.error is None for o in outcomes)
    (transaction,) = client.transactions
    in_it = [(c.method, c.collection) for c in client.calls
             if c.kwargs.get("session") is transaction]
    assert in_it == [("bulk_write", "entities"), ("insert_many", OUTBOX)]
    outbox = next(c for c in client.calls if c.method == "insert_many"
                  and c.collection == OUTBOX)
    assert [doc["e"] for doc in outbox.args[0]] == [E, E, "urn:x:gone"]
    assert await values(store) == [1, 2]
    await store.close()


async def test_history_left_by_a_stopped_process_is_recorded_at_start_up(server) -> None:
    first = await server.store()
    await first.modify("", E, lambda _: lamp(1), record=record)
    await first.close()
    # a process died after committing a write, before recording its history
    history = record(lamp(1), lamp(2), lambda: "urn:ngsi-ld:Instance:77")
    client = server.client
    assert client is not None
    old = datetime.now(UTC) - timedelta(minutes=5)
    outbox = client["o"][OUTBOX]
    await outbox.insert_one({"_id": "x", "e": E, "h": encode_history(history), "at": old})
    # and another one whose instances were written already
    await outbox.insert_one({"_id": "y", "e": E, "h": encode_history(history), "at": old})
    fresh = {"_id": "z", "e": E, "h": encode_history(history), "at": datetime.now(UTC)}
    await outbox.insert_one(fresh)  # in flight in a live process: left alone
    again = await server.store()
    assert await values(again) == [1, 2]  # recorded once, not twice
    left = await client["o"][OUTBOX].find({}).to_list()
    assert [doc["_id"] for doc in left] == ["z"]
    await again.close()


async def test_a_standalone_server_records_right_after_the_write() -> None:
    server = Server(standalone=True)
    store = await server.store()
    client = server.client
    assert client is not None
    client.calls.clear()
    await store.modify("", E, lambda _: lamp(1), record=record)
    assert client.transactions == []
    sent = [(c.method, c.collection) for c in client.calls
            if c.collection in ("entities", "temporal_instances", OUTBOX)
            and c.method != "find_one"]
    assert sent[0] == ("insert_one", "entities")
    assert ("insert_many", "temporal_instances") in sent
    assert all(collection != OUTBOX for _, collection in sent)
    assert await values(store) == [1]
    await store.close()


async def test_a_write_without_history_needs_no_transaction(server) -> None:
    store = await server.store()
    await store.modify("", E, lambda _: lamp(1))
    await store.modify_many("", [(E, lambda _: lamp(2))])
    assert server.client is not None and server.client.transactions == []
    await store.close()


async def test_a_batch_whose_transaction_aborts_is_redone_entity_by_entity(server) -> None:
    store = await server.store()
    client = server.client
    assert client is not None
    other = "urn:ngsi-ld:Lamp:2"
    raced: list[bool] = []

    def bump(current: Any) -> Any:
        if not raced:  # another process creates it between the batch's read and its write
            raced.append(True)
            client._mock["o"]["entities"].insert_one(
                {**to_document({**lamp(10), "id": other}, 1), "_id": other})
        power = 1 if current is None else current["attrs"]["urn:p"][0]["value"] + 1
        return {**lamp(power), "id": other}

    outcomes = await store.modify_many("", [(E, lambda _: lamp(1)), (other, bump)],
                                       record=record)
    assert [o.error for o in outcomes] == [None, None]
    assert [t.aborted for t in client.transactions] == [1, 0, 0]  # the batch, then each alone
    assert await values(store) == [1]  # E recorded once, not for the aborted attempt
    found = await store.history.read_history("", [other], None, TemporalQuery())
    assert [i.value for i in found[other] if i.attribute == "urn:p"] == [11]
    assert (await store.get_entity("", other))["attrs"]["urn:p"][0]["value"] == 11
    await store.close()
