"""Transient entities and attributes (clause 4.22): ngsi_ld.expiry and broker.expiry."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.app import BROKER, create_app
from broker.config import Settings
from broker.events import ChangeBus
from broker.expiry import ExpirySweeper, now_millis
from ngsi_ld.batch import batch_upsert_mutation
from ngsi_ld.changes import ChangeEvent
from ngsi_ld.expiry import earliest_expiry, expire, expiry_millis, without_expired
from ngsi_ld.operations import create_entity
from ngsi_ld.timeutil import iso_millis
from storage import DEFAULT_TENANT, MemoryStore, SqliteStore

P = "https://example.org/p"
Q = "https://example.org/q"
T0 = "2026-01-01T00:00:00.000Z"
PAST = "2020-01-01T00:00:00Z"
FUTURE = "2100-01-01T00:00:00Z"


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def entity(**attrs: Any) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:T:1", "type": ["https://example.org/T"], "attrs": attrs}


def ms(text: str) -> int:
    at = expiry_millis(text)
    assert at is not None
    return at


def test_earliest_expiry_looks_at_every_level() -> None:
    assert earliest_expiry(entity(p=[prop(1)])) is None
    nested = entity(p=[prop(1, sub={Q: prop(2, expiresAt="2030-01-01T00:00:00Z")}),
                       prop(3, datasetId="urn:d:1", expiresAt="2031-01-01T00:00:00Z")])
    assert earliest_expiry(nested) == ms("2030-01-01T00:00:00Z")
    assert earliest_expiry({**nested, "expiresAt": "2029-01-01T00:00:00.250Z"}) == ms(
        "2029-01-01T00:00:00.250Z")


def test_without_expired_removes_what_expired_only() -> None:
    now = ms("2050-01-01T00:00:00Z")
    durable = entity(p=[prop(1)])
    assert without_expired(durable, now) is durable
    assert without_expired({**durable, "expiresAt": PAST}, now) is None
    mixed = entity(p=[prop(1, expiresAt=PAST), prop(2, datasetId="urn:d:1")],
                   q=[prop(3, expiresAt=PAST)],
                   r=[prop(4, expiresAt=FUTURE, sub={Q: prop(5, expiresAt=PAST)})])
    live = without_expired(mixed, now)
    assert live is not None and set(live["attrs"]) == {"p", "r"}
    assert live["attrs"]["p"] == [prop(2, datasetId="urn:d:1")]
    assert live["attrs"]["r"] == [prop(4, expiresAt=FUTURE)]
    assert mixed["attrs"]["q"] == [prop(3, expiresAt=PAST)]  # the input is left alone


times = st.sampled_from([PAST, FUTURE, "2040-06-01T12:00:00Z", None])


def _instance(value: int, at: str | None, sub_at: str | None) -> dict[str, Any]:
    sub = prop(0) if sub_at is None else prop(0, expiresAt=sub_at)
    return prop(value, sub={Q: sub}) if at is None else prop(value, expiresAt=at, sub={Q: sub})


instances = st.builds(_instance, st.integers(), times, times)


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(instances, min_size=1,
                                                                  max_size=2)),
       times, st.sampled_from(["2030-01-01T00:00:00Z", "2045-01-01T00:00:00Z"]))
def test_nothing_expired_survives_and_nothing_else_goes(
    attrs: dict[str, Any], entity_at: str | None, when: str
) -> None:
    whole = entity(**attrs) if entity_at is None else {**entity(**attrs), "expiresAt": entity_at}
    now = ms(when)
    live = without_expired(whole, now)
    first = earliest_expiry(whole)
    if entity_at is not None and ms(entity_at) <= now:
        assert live is None
        return
    assert live is not None
    after = earliest_expiry(live)
    assert after is None or after > now
    if first is None or first > now:
        assert live is whole
    assert without_expired(live, now) is live
    kept = sum(len(v) for v in live["attrs"].values())
    expected = sum(1 for v in attrs.values() for i in v
                   if "expiresAt" not in i or ms(i["expiresAt"]) > now)
    assert kept == expected


def test_expire_stamps_what_it_changes() -> None:
    mutation = expire(ms("2050-01-01T00:00:00Z"), "2050-01-01T00:00:00.000Z")
    durable = {**entity(p=[prop(1)]), "modifiedAt": T0}
    assert mutation(durable) is durable
    assert mutation(None) is None
    changed = mutation({**entity(p=[prop(1, expiresAt=PAST)], q=[prop(2)]), "modifiedAt": T0})
    assert changed is not None and set(changed["attrs"]) == {"q"}
    assert changed["modifiedAt"] == "2050-01-01T00:00:00.000Z"


# -- the sweeper ----------------------------------------------------------------------------
async def _stored(store: MemoryStore, new: dict[str, Any]) -> None:
    await store.modify(DEFAULT_TENANT, new["id"], create_entity(new, iso_millis(now_millis())))


async def test_a_sweep_deletes_what_expired_and_publishes_the_deletions() -> None:
    store, bus = MemoryStore(), ChangeBus()
    events: list[ChangeEvent] = []
    bus.subscribe(events.append)
    await _stored(store, {**entity(p=[prop(1)]), "expiresAt": PAST})
    other = {**entity(p=[prop(1, expiresAt=PAST)], q=[prop(2)]), "id": "urn:ngsi-ld:T:2"}
    await _stored(store, other)
    await _stored(store, {**entity(p=[prop(1)]), "id": "urn:ngsi-ld:T:3", "expiresAt": FUTURE})
    sweeper = ExpirySweeper(store, bus)
    assert await sweeper.sweep() == ms(FUTURE)
    assert await store.get_entity(DEFAULT_TENANT, "urn:ngsi-ld:T:1") is None
    kept = await store.get_entity(DEFAULT_TENANT, "urn:ngsi-ld:T:2")
    assert kept is not None and set(kept["attrs"]) == {"q"}
    assert sorted((e.entity_id, e.trigger) for e in events) == [
        ("urn:ngsi-ld:T:1", "entityDeleted"), ("urn:ngsi-ld:T:2", "entityUpdated")]
    assert sweeper.swept == 2
    assert await sweeper.sweep() == ms(FUTURE)  # nothing more is due
    assert sweeper.swept == 2


@pytest.mark.parametrize("told", [False, True], ids=["noted-entity", "expiry-told"])
async def test_a_noted_write_wakes_the_sweeper(told: bool) -> None:
    # noted with the written entity (the sweeper looks for its expiry), or with the
    # expiry the store told (the SQLite writer's Change.expires)
    store, bus = MemoryStore(), ChangeBus()
    deleted = asyncio.Event()
    bus.subscribe(lambda e: deleted.set() if e.trigger == "entityDeleted" else None)
    sweeper = ExpirySweeper(store, bus, idle=3600)
    sweeper.start()
    try:
        await asyncio.sleep(0)  # the first sweep finds nothing and waits an hour
        transient = {**entity(p=[prop(1)]), "expiresAt": PAST}
        await _stored(store, transient)
        if told:
            sweeper.note({}, ms(PAST))  # told, not looked for in the entity
        else:
            sweeper.note(transient)
        await asyncio.wait_for(deleted.wait(), 30)
        assert await store.get_entity(DEFAULT_TENANT, transient["id"]) is None
    finally:
        await sweeper.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.dictionaries(st.sampled_from([P, Q]), st.lists(
    st.builds(_instance, st.integers(-9, 9), times, times), min_size=1, max_size=1)),
                          times), min_size=1, max_size=4))
def test_the_sqlite_store_tells_when_what_it_wrote_expires(
        writes: list[tuple[dict[str, Any], str | None]]) -> None:
    async def run(path: Path) -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            for number, (attrs, at) in enumerate(writes):
                new = entity(**attrs) if at is None else {**entity(**attrs), "expiresAt": at}
                now = f"2026-01-01T00:00:0{number}Z"
                batch = await store.modify_many(DEFAULT_TENANT, [
                    (new["id"], batch_upsert_mutation(new, now)),
                    ("urn:ngsi-ld:T:2", batch_upsert_mutation({**new, "id": "urn:ngsi-ld:T:2"},
                                                              now))])
                single = await store.modify(DEFAULT_TENANT, "urn:ngsi-ld:T:3",
                                            batch_upsert_mutation(new, now))
                for change in [o.change for o in batch] + [single]:
                    assert change is not None
                    assert change.expires == earliest_expiry(change.after)
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp) / "x.db"))


# -- reads before the sweep ------------------------------------------------------------------
@pytest.fixture(params=["memory", "sqlite"])
async def http(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestClient]:
    store = "memory:" if request.param == "memory" else f"sqlite:///{tmp_path}/expiry.db"
    c = TestClient(TestServer(create_app(Settings(store=store))))
    await c.start_server()
    yield c
    await c.close()


async def test_what_expired_is_not_served_even_before_the_sweep(http: TestClient) -> None:
    broker = http.server.app[BROKER]
    assert broker.expiry is not None
    await broker.expiry.close()  # nothing is swept from here on
    gone = {**entity(), "id": "urn:ngsi-ld:T:gone", "expiresAt": PAST}
    part = {**entity(), "id": "urn:ngsi-ld:T:part",
            "attrs": {P: [prop(1, expiresAt=PAST)], Q: [prop(2)]}}
    for new in (gone, part):
        await broker.store.modify(DEFAULT_TENANT, new["id"], create_entity(new, T0))
    for _ in range(2):  # the second time from whatever a cache kept
        assert (await http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:T:gone")).status == 404
        reply = await http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:T:part")
        assert reply.status == 200 and set(await reply.json()) == {"id", "type", Q}
        listed = await http.get("/ngsi-ld/v1/entities?type=https://example.org/T")
        assert [(e["id"], sorted(e)) for e in await listed.json()] == [
            ("urn:ngsi-ld:T:part", sorted(["id", "type", Q]))]
