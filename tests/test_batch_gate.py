"""The batch gate: batches decoded only when their write is next (broker/service/gate.py).

A slot bounds the batches between their parse and the end of their write; a
distributed batch's forwarding runs outside its slot (a source may be this very
broker); batches through any gate answer and store what they do without one.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.config import Settings
from broker.contexts import ContextResolver
from broker.service import BatchParts, Call, Service, batch, queries
from broker.service.gate import BatchGate
from ngsi_ld.bodies import JSON, Body
from ngsi_ld.params import QueryParams
from storage import SqliteStore, Store

ROOM = "urn:ngsi-ld:Room:"


def _call(**params: str) -> Call:
    return Call(params=QueryParams(params), path="/ngsi-ld/v1/entityOperations/upsert",
                path_qs="/ngsi-ld/v1/entityOperations/upsert")


def _body(data: Any) -> Body:
    return Body(data=data, media_type=JSON, client_context=None)


def _rooms(batch_no: int, size: int, value: int) -> list[dict[str, Any]]:
    return [{"id": f"{ROOM}{batch_no}-{n}", "type": "Room",
             "temperature": {"type": "Property", "value": value + n}} for n in range(size)]


async def _service(store: Store) -> Service:
    await store.open()
    return Service(Settings(store="memory:"), store, ContextResolver(store))


async def _settle(rounds: int = 20) -> None:
    for _ in range(rounds):  # let every ready task run as far as it can
        await asyncio.sleep(0)


async def test_a_slot_waits_while_every_slot_is_taken() -> None:
    gate = BatchGate(2)
    first, second = gate.slot(), gate.slot()
    await first.__aenter__()
    await second.__aenter__()
    third = asyncio.ensure_future(gate.slot().__aenter__())
    await _settle()
    assert not third.done()
    await first.__aexit__(None, None, None)
    await _settle()
    assert third.done()
    await second.__aexit__(None, None, None)
    await (third.result()).__aexit__(None, None, None)
    async with gate.slot(), gate.slot():  # both slots free again
        pass


async def test_outside_gives_the_slot_back_meanwhile() -> None:
    gate = BatchGate(1)
    release = asyncio.Event()
    taken: list[bool] = []

    async def other() -> None:
        async with gate.slot():
            taken.append(True)
        release.set()

    async def forward() -> str:
        task = asyncio.ensure_future(other())
        await release.wait()  # only possible if the slot was given back
        await task
        return "answered"

    async with gate.slot() as slot:
        assert await slot.outside(forward()) == "answered"
        # held again: another batch waits
        waiting = asyncio.ensure_future(gate.slot().__aenter__())
        await _settle()
        assert not waiting.done()
    await _settle()
    assert waiting.done() and taken == [True]
    await waiting.result().__aexit__(None, None, None)


async def test_cancelled_while_taking_the_slot_back_gives_nothing_back_twice() -> None:
    gate = BatchGate(1)
    holder = gate.slot()

    async def batch_with_forwarding() -> None:
        async with gate.slot() as slot:
            await slot.outside(asyncio.sleep(0))

    await holder.__aenter__()  # taken by another batch: the one below waits to enter
    task = asyncio.ensure_future(batch_with_forwarding())
    await _settle()
    task.cancel()
    await _settle()
    assert task.cancelled()
    await holder.__aexit__(None, None, None)
    # one slot, exactly: a second one waits
    async with gate.slot():
        waiting = asyncio.ensure_future(gate.slot().__aenter__())
        await _settle()
        assert not waiting.done()
    await _settle()
    await waiting.result().__aexit__(None, None, None)


async def test_no_bound_never_waits() -> None:
    gate = BatchGate(None)
    async with gate.slot() as a, gate.slot() as b, gate.slot() as c:
        assert await a.outside(asyncio.sleep(0, "x")) == "x"
        assert b is not c


async def test_sqlite_store_has_a_gate_and_many_batches_all_answer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "broker.db")
    service = await _service(store)
    try:
        assert store.batches_in_flight == 2
        replies = await asyncio.gather(*(
            batch.batch_upsert(service, _call(), _body(_rooms(b, 5, 20))) for b in range(8)))
        assert [r.status for r in replies] == [201] * 8
        again = await asyncio.gather(*(
            batch.batch_upsert(service, _call(), _body(_rooms(b, 5, 30))) for b in range(8)))
        assert [r.status for r in again] == [204] * 8
        found = await queries.query_entities(service, Call(
            params=QueryParams({"type": "Room", "limit": "100", "options": "keyValues"}),
            path="/ngsi-ld/v1/entities", path_qs="/ngsi-ld/v1/entities"))
        assert found.body is not None
        values = {e["id"]: e["temperature"] for e in orjson.loads(found.body)}
        assert values == {f"{ROOM}{b}-{n}": 30 + n for b in range(8) for n in range(5)}
    finally:
        await store.close()


class _LoopSources:
    """Context sources that are this very broker: a batch forwarded comes back as a
    batch of its own (through the same gate)."""

    def __init__(self) -> None:
        self.service: Service | None = None
        self.forwarded = 0

    def serves(self, tenant: str) -> bool:
        return True

    async def forward_batch(self, tenant: str, operation: str,
                            items: Sequence[tuple[str, Any, Any]], call: Call) -> BatchParts:
        assert self.service is not None
        if call.via:  # the forwarded batch itself: stays local
            return BatchParts(frozenset(range(len(items))))
        self.forwarded += 1
        forwarded = Call(params=call.params, path=call.path, path_qs=call.path_qs,
                         headers={"Via": "1.1 self"})
        reply = await batch.batch_upsert(self.service, forwarded,
                                         _body([raw for _, _, raw in items]))
        assert reply.status in (201, 204)
        return BatchParts(frozenset(), forwarded=tuple(i for i, _, _ in items))


async def test_a_batch_forwarded_to_this_broker_does_not_wait_for_its_own_slot(
        tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "broker.db")
    service = await _service(store)
    sources = _LoopSources()
    sources.service = service
    service.sources = sources  # type: ignore[assignment]
    try:
        async with asyncio.timeout(60):  # a deadlock would hang here, not fail
            replies = await asyncio.gather(*(
                batch.batch_upsert(service, _call(), _body(_rooms(b, 3, 20)))
                for b in range(4)))
        assert [r.status for r in replies] == [204] * 4  # taken by the source
        assert sources.forwarded == 4
    finally:
        await store.close()


_BATCHES = st.lists(
    st.tuples(st.sampled_from(["create", "upsert", "update", "merge", "delete"]),
              st.integers(1, 3), st.integers(0, 3)),
    min_size=1, max_size=6)


async def _run(size: int | None, plan: list[tuple[str, int, int]]) -> tuple[Any, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "broker.db")
        service = await _service(store)
        service.batch_gate = BatchGate(size)
        try:
            return await _batches(service, plan)
        finally:
            await store.close()


async def _batches(service: Service, plan: list[tuple[str, int, int]]) -> tuple[Any, Any]:
    """The replies of the batches of ``plan`` sent together, and the Rooms stored after."""
    operations = {"create": batch.batch_create, "upsert": batch.batch_upsert,
                  "update": batch.batch_update, "merge": batch.batch_merge}
    replies = []
    # each batch on entities of its own (as many as its second number), in its own task
    tasks = []
    for n, (operation, count, value) in enumerate(plan):
        rooms = _rooms(n, count, value)
        if operation == "delete":
            coro = batch.batch_delete(service, _call(), _body([r["id"] for r in rooms]))
        else:
            coro = operations[operation](service, _call(), _body(rooms))
        tasks.append(asyncio.ensure_future(coro))
    for reply in await asyncio.gather(*tasks):
        replies.append((reply.status, reply.body))
    found = await queries.query_entities(service, Call(
        params=QueryParams({"type": "Room", "limit": "1000"}),
        path="/ngsi-ld/v1/entities", path_qs="/ngsi-ld/v1/entities"))
    return replies, found.body


@settings(max_examples=30, deadline=None)
@given(_BATCHES, st.sampled_from([1, 2, 3]))
def test_batches_through_a_gate_answer_and_store_what_they_do_without(
        plan: list[tuple[str, int, int]], size: int) -> None:
    async def both() -> None:
        assert await _run(size, plan) == await _run(None, plan)
    asyncio.run(both())
