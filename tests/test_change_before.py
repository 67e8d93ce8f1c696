"""A change's state before, handed over as the bytes the store read when nobody may read it.

The SQLite writer asks ``Store.wants_before`` (the change bus's ``may_concern``) of
each write of an entity that existed; when the answer is no, the write's Change holds
the stored bytes (``Change.stored``), decoded only if read.  The properties: such a
Change reads as the decoded one; whatever the hint answers, the store writes and
answers the same; the bus hears the same events from it; a subscription created
while a batch is in flight (after the writer decided) still gets the state before
(showChanges' previous values, 5.8); notifications of every kind (updates with
previous values, deletions) are the same whether the hint answers or is wrong.
"""

from __future__ import annotations

import asyncio
import copy
import sys
import tempfile
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from subscriptions_harness import Harness, room
from test_sqlite_upsert_writer import _tables, upsert_batches, upserts
from test_subscriptions_matching import V, entity, matcher

from broker.events import ChangeBus
from broker.routes.subscriptions import MANAGER
from broker.schemas.models import ModelSchemas
from broker.schemas.store import ValidatingStore
from ngsi_ld.batch import batch_upsert_mutation
from ngsi_ld.changes import ChangeEvent
from ngsi_ld.model import Change, Entity
from storage import SqliteStore
from subscriptions import SubscriptionIndex

UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
DELETE = "/ngsi-ld/v1/entityOperations/delete"

STATES = st.one_of(st.none(), st.builds(
    lambda n, types, t, h: entity(n, types, **({"t": t} | ({"h": h} if h is not None else {}))),
    st.integers(1, 2), st.sampled_from([(), ("Room",), ("Office",), ("Room", "Office")]),
    st.integers(0, 2), st.none() | st.integers(0, 2)))


def _typeless(state: Entity | None) -> Entity | None:
    """``state`` without its ``type`` member when it has none (``entity`` gives ``[]``)."""
    if state is not None and not state.get("type"):
        state = {k: v for k, v in state.items() if k != "type"}  # type: ignore[assignment]
    return state


@given(STATES, STATES)
def test_a_stored_change_reads_as_the_decoded_one(before: Entity | None,
                                                  after: Entity | None) -> None:
    before, after = _typeless(before), _typeless(after)
    decoded = Change("urn:x:1", before, after, 5)
    if before is None:
        assert not decoded.existed and decoded.before_types == ()
        return
    stored = Change.stored("urn:x:1", orjson.dumps(before), before.get("type", ()), after, 5)
    assert stored.existed and not stored.decoded
    assert stored.before_types == decoded.before_types == before.get("type", ())
    assert stored == decoded and repr(stored) == repr(decoded)
    assert stored.decoded and stored.before == before and stored.before is stored.before
    if after is None:
        return
    # both states handed over as bytes (a batch replacement nobody may read: slcut)
    both = Change.stored("urn:x:1", orjson.dumps(before), before.get("type", ()), None, 5,
                         after_stored=orjson.dumps(after), after_types=after.get("type", ()))
    assert both.existed and both.exists and not both.decoded
    assert both.after_types == decoded.after_types == after.get("type", ())
    assert both == decoded and repr(both) == repr(decoded)
    assert both.after == after and both.after is both.after and both.exists
    assert both.after_types == after.get("type", ())


@given(STATES)
def test_a_change_tells_whether_the_entity_exists_after_without_decoding(
        after: Entity | None) -> None:
    after = _typeless(after)
    plain = Change("urn:x:1", None, after)
    assert plain.exists == (after is not None)
    assert plain.after_types == (() if after is None else after.get("type", ()))


# -- the store: the same writes and answers whatever the hint says -----------------------
def _hint(answer: str, seed: int) -> Any:
    """A ``wants_before``: None, always no, always yes, or no and yes by turns."""
    if answer == "none":
        return None
    if answer == "turns":
        turn = [seed]

        def turns(tenant: str, entity_id: str, types: Collection[str]) -> bool:
            turn[0] += 1
            return bool(turn[0] % 2)
        return turns
    return lambda tenant, entity_id, types: answer == "yes"


async def _written(path: Path, batches: list[list[dict[str, Any]]], hint: Any,
                   deletes: list[str]) -> list[Any]:
    store = SqliteStore(path)
    store.wants_before = hint
    await store.open()
    seen: list[Any] = []
    try:
        for outcomes in await upsert_batches(store, batches):
            seen.extend((o.entity_id, o.error, o.change and o.change.existed,
                         o.change and list(o.change.before_types), o.change) for o in outcomes)
        for entity_id in deletes:  # a deletion: after None, its before read or not
            change = await store.modify("", entity_id, lambda _: None)
            seen.append((change.existed, list(change.before_types), change))
    finally:
        await store.close()
    return seen


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upserts(), st.sampled_from(["no", "yes", "turns"]), st.integers(0, 1),
       st.lists(st.sampled_from(["urn:x:U0", "urn:x:U1", "urn:x:U9"]), max_size=2))
def test_the_hint_changes_nothing_the_store_writes_or_answers(
        batches: list[list[dict[str, Any]]], answer: str, seed: int,
        deletes: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        usual, hinted = Path(tmp) / "usual.db", Path(tmp) / "hinted.db"
        expected = asyncio.run(_written(usual, batches, None, deletes))
        # a Change compares by its states: read after the other's (decoding it)
        assert asyncio.run(_written(hinted, batches, _hint(answer, seed), deletes)) == expected
        assert _tables(hinted) == _tables(usual)


async def test_a_replaced_entity_is_let_go_by_the_writer_when_nobody_may_read_it(
        tmp_path: Path) -> None:
    """The hint says no: the write's Change holds both states as bytes, the mutation lets
    go of the entity it was given, and nothing the store keeps holds that entity once
    written (the writer thread frees it: benchmarks/README.md, slcut)."""
    store = SqliteStore(tmp_path / "broker.db")
    store.wants_before = lambda tenant, entity_id, types: False
    await store.open()
    try:
        first = {"id": "urn:x:1", "type": ["Room"],
                 "attrs": {"t": [{"type": "Property", "value": 1}]}}
        (created,) = await upsert_batches(store, [[first]])
        assert created[0].change is not None and not created[0].change.existed
        new: Any = {"id": "urn:x:1", "type": ["Room"],
                    "attrs": {"t": [{"type": "Property", "value": 2}]}}
        attrs = new["attrs"]  # the replacement's after holds them
        held, held_attrs = sys.getrefcount(new), sys.getrefcount(attrs)
        mutation = batch_upsert_mutation(new, "2026-12-07T10:00:00Z", owned=True)
        (outcome,) = await store.modify_many("", [("urn:x:1", mutation)])
        change = outcome.change
        assert change is not None and outcome.error is None
        # let go by the mutation, the writer and the Change (after as bytes)
        assert sys.getrefcount(new) == held and sys.getrefcount(attrs) == held_attrs
        assert change.existed and change.exists and change.after_types == ["Room"]
        assert not change.decoded  # nothing decoded yet
        assert change.after == await store.get_entity("", "urn:x:1")
        assert change.after["attrs"]["t"][0]["value"] == 2  # type: ignore[index]
        assert mutation.replacement({"id": "urn:x:1"}) is None  # handed over once
        with pytest.raises(RuntimeError):
            mutation({"id": "urn:x:1"})
    finally:
        await store.close()


def test_a_validating_store_hands_the_hint_to_the_store_that_writes(tmp_path: Path) -> None:
    inner = SqliteStore(tmp_path / "broker.db")
    outer = ValidatingStore(inner, ModelSchemas({}))

    def hint(tenant: str, entity_id: str, types: Collection[str]) -> bool:
        return False

    outer.wants_before = hint  # as the service sets it (model schemas on)
    assert inner.wants_before is hint and outer.wants_before is hint


# -- the bus: the same events from a Change decoded or not -------------------------------
@given(st.lists(st.sampled_from(["Room", "Office", "Other"]), max_size=3),
       st.booleans(), STATES, STATES, st.sampled_from(["", "t1"]))
def test_the_bus_hears_the_same_from_a_stored_change(
        subscribed: list[str], page: bool, before: Entity | None, after: Entity | None,
        tenant: str) -> None:
    before, after = _typeless(before), _typeless(after)
    if before is None:
        return  # only a state before is ever handed over as bytes
    heard: dict[str, list[ChangeEvent]] = {"decoded": [], "stored": []}
    buses = {}
    for how in heard:
        bus, index = ChangeBus(), SubscriptionIndex()
        for n, name in enumerate(subscribed):
            index.add(f"s{n}", "", matcher(entities=[{"type": name}],
                                           watchedAttributes=["t"]))
        bus.subscribe(heard[how].append, index.concerns)
        if page:  # the explorer's page: every write of its tenant
            bus.subscribe(heard[how].append, lambda t, *_: t == "t1")
        buses[how] = bus
    buses["decoded"].publish_written(tenant, Change("urn:x:1", copy.deepcopy(before), after))
    stored = Change.stored("urn:x:1", orjson.dumps(before), before.get("type", ()), after)
    may = buses["stored"].may_concern(
        tenant, "urn:x:1", {*before.get("type", ()), *((after or {}).get("type", ()))})
    buses["stored"].publish_written(tenant, stored)
    assert heard["stored"] == heard["decoded"]
    assert buses["stored"].skipped == buses["decoded"].skipped
    assert stored.decoded == may  # decoded only when a listener may be concerned
    if after is not None:  # after handed over as bytes too: the same events, types read
        both = Change.stored("urn:x:1", orjson.dumps(before), before.get("type", ()), None,
                             after_stored=orjson.dumps(after),
                             after_types=after.get("type", ()))
        heard["both"] = []
        bus, index = ChangeBus(), SubscriptionIndex()
        for n, name in enumerate(subscribed):
            index.add(f"s{n}", "", matcher(entities=[{"type": name}],
                                           watchedAttributes=["t"]))
        bus.subscribe(heard["both"].append, index.concerns)
        if page:
            bus.subscribe(heard["both"].append, lambda t, *_: t == "t1")
        bus.publish_written(tenant, both)
        assert heard["both"] == heard["decoded"]
        assert bus.skipped == buses["decoded"].skipped
    if tenant == "" and any(V + name in before.get("type", ()) for name in subscribed):
        assert stored.decoded  # a subscription on its type before: it was read


# -- the broker: notifications whatever the hint says ------------------------------------
def _on_rooms(h: Harness, path: str, **notification: Any) -> dict[str, Any]:
    return {"entities": [{"type": "Room"}],
            "notification": {"endpoint": {"uri": h.receiver.url(path)}, **notification}}


async def _sqlite_harness(tmp: str) -> tuple[Harness, SqliteStore]:
    store = SqliteStore(Path(tmp) / "broker.db")
    h = await Harness(store).start()  # type: ignore[arg-type]  # records: as the memory one
    return h, store


async def test_a_subscription_created_while_a_batch_is_in_flight_reads_the_state_before(
        ) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        h, store = await _sqlite_harness(tmp)
        try:
            await h.create(room(1, 20.0))
            asked = threading.Event()
            answers: list[bool] = []
            hint = store.wants_before
            assert hint is not None

            def wants(tenant: str, entity_id: str, types: Collection[str]) -> bool:
                answers.append(hint(tenant, entity_id, types))
                asked.set()
                return answers[-1]

            store.wants_before = wants
            written = store.modify_many
            go = asyncio.Event()

            async def held(*args: Any, **kwargs: Any) -> Any:
                outcomes = await written(*args, **kwargs)
                await go.wait()  # written, not yet published: the subscription comes now
                return outcomes

            store.modify_many = held  # type: ignore[method-assign]
            batch = asyncio.create_task(h.request("POST", UPSERT, [room(1, 25.0)]))
            assert await asyncio.to_thread(asked.wait, 10)
            await h.subscribe(_on_rooms(h, "notify", showChanges=True))
            go.set()
            status, body, _ = await batch
            assert status == 204, body
            assert answers == [False]  # the writer decided before the subscription came
            [got] = await h.receiver.wait_for(1)
            assert got.body["data"][0]["temperature"] == {
                "type": "Property", "value": 25.0, "previousValue": 20.0}
        finally:
            await h.close()


async def _notified(tmp: str, wrong: bool) -> list[Any]:
    """Every notification of a few subscriptions (showChanges, deletions) over a
    sequence of writes; ``wrong``: the writer's hint always answers no."""
    h, store = await _sqlite_harness(tmp)
    try:
        if wrong:
            store.wants_before = lambda tenant, entity_id, types: False
        await h.subscribe(_on_rooms(h, "changes", showChanges=True, format="normalized"))
        await h.subscribe(_on_rooms(h, "deleted", showChanges=True) | {
            "notificationTrigger": ["entityDeleted", "attributeDeleted", "attributeUpdated"]})
        await h.subscribe({"entities": [{"type": "Office"}], "watchedAttributes": ["h"],
                           "notification": {"endpoint": {"uri": h.receiver.url("office")}}})
        assert (await h.request("POST", UPSERT, [room(1, 20.0), room(2, 21.0, h={
            "type": "Property", "value": 1})]))[0] == 201
        assert (await h.request("POST", UPSERT, [room(1, 22.0), {
            "id": "urn:ngsi-ld:Room:2", "type": "Office",
            "h": {"type": "Property", "value": 2}}]))[0] == 204
        await h.update("urn:ngsi-ld:Room:1", {"temperature": {"type": "Property", "value": 23}})
        await h.delete_attr("urn:ngsi-ld:Room:1", "temperature")
        assert (await h.request("POST", DELETE, ["urn:ngsi-ld:Room:1",
                                                 "urn:ngsi-ld:Room:2"]))[0] == 204
        await asyncio.sleep(0.3)
        await h.app[MANAGER].drain()
        return sorted(((path, _stable(got.body["data"])) for path in ("changes", "deleted",
                                                                      "office")
                       for got in h.receiver.at(path)), key=repr)
    finally:
        await h.close()


def _stable(data: Any) -> Any:
    """A notification's data without the times the writes stamped."""
    if isinstance(data, dict):
        return {k: _stable(v) for k, v in data.items()
                if k not in ("createdAt", "modifiedAt", "deletedAt", "observedAt")}
    if isinstance(data, list):
        return [_stable(v) for v in data]
    return data


async def test_notifications_are_the_same_when_the_hint_is_wrong() -> None:
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        usual = await _notified(first, wrong=False)
        assert usual  # the sequence notifies (updates, previous values, deletions)
        assert any("previousValue" in repr(data) for _, data in usual)
        assert await _notified(second, wrong=True) == usual
