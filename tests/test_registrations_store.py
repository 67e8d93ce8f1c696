"""Registrations kept by ``broker.service.registry.Registrations`` on every backend.

One contract, run on memory, SQLite (a file) and the MongoDB backend over the
stand-in of tests/mongo_standin.py (not MongoDB: it runs the backend's code).
A second ``Registrations`` over the same store stands for a restarted broker.
The MongoDB operations the registry causes are pinned at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mongo_standin import OneServer

from broker.app import create_app
from broker.config import Settings
from broker.service.registry import COLLECTION, Registrations
from ngsi_ld.federation import Registration, parse_registration, registration_query
from storage import MongoStore, Store, open_store

EX = "https://example.org/"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def expand(name: str) -> str:
    return EX + name


def reg(suffix: str, **extra: Any) -> Registration:
    doc: dict[str, Any] = {
        "id": f"urn:ngsi-ld:ContextSourceRegistration:{suffix}",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}],
        "endpoint": "http://source:1026",
        **extra,
    }
    return parse_registration(doc, expand, NOW)


@pytest.fixture(params=["memory", "sqlite", "mongodb-stand-in"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A function opening a store on the same data each time it is called."""
    memory = open_store("memory:")
    server = OneServer()
    opened: list[Store] = []

    async def open_one() -> Store:
        if request.param == "memory":
            store: Store = memory  # one object: "reopening" sees the same data
        elif request.param == "sqlite":
            store = open_store(f"sqlite://{tmp_path.resolve()}/reg.db")
        else:
            store = MongoStore("mongodb://stand-in/reg", client_factory=server.factory)
        if store not in opened:
            await store.open()
            opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


async def test_put_get_delete_and_reload_after_restart(opener: Any) -> None:
    store = await opener()
    registry = Registrations(store)
    await registry.load()
    assert registry.empty
    one = reg("1", scope="/a", contextSourceInfo=[{"key": "k", "value": "v"}],
              management={"timeout": 100}, owner={"nested": [1, 2]},
              location={"type": "Point", "coordinates": [1.5, 2.5]})
    await registry.put("", one)
    await registry.put("city", reg("2", mode="redirect"))
    await registry.put("city", reg("3"))
    assert not registry.empty
    assert [r.id[-1] for r in registry.of("city", NOW)] == ["2", "3"]
    assert await registry.delete("city", reg("3").id)
    assert not await registry.delete("city", reg("3").id)

    restarted = Registrations(await opener())
    await restarted.load()
    assert restarted.of("", NOW) == (one,)
    assert [r.id for r in restarted.of("city", NOW)] == [reg("2").id]
    assert restarted.tenants() == ["", "city"]


async def test_updates_replace_and_status_members_are_written_back(opener: Any) -> None:
    registry = Registrations(await opener())
    await registry.put("", reg("1"))
    assert registry.of("", NOW)[0].description is None
    await registry.put("", replace(reg("1"), description="changed"))
    assert registry.of("", NOW)[0].description == "changed"
    registry.record_delivery("", reg("1").id, ok=True)
    assert registry.of("", NOW)[0].delivery.times_sent == 1  # seen at once by planning
    registry.record_delivery("", reg("1").id, ok=False)
    registry.record_delivery("", "urn:unknown", ok=True)  # ignored
    await registry.flush()
    restarted = Registrations(await opener())
    await restarted.load()
    [back] = restarted.of("", NOW)
    assert back.description == "changed"
    assert (back.delivery.times_sent, back.delivery.times_failed) == (2, 1)
    assert back.delivery.status == "failed"


async def test_a_damaged_record_is_skipped_not_used(opener: Any) -> None:
    store = await opener()
    await store.put_record("", COLLECTION, "urn:bad", {"id": "urn:bad", "endpoint": 3})
    registry = Registrations(store)
    await registry.put("", reg("1"))
    restarted = Registrations(store)
    await restarted.load()
    assert [r.id for r in restarted.of("", NOW)] == [reg("1").id]


async def test_expired_ones_are_hidden_then_swept(opener: Any) -> None:
    registry = Registrations(await opener())
    heard: list[tuple[str | None, str | None]] = []
    registry.on_change(lambda tenant, before, after: heard.append(
        (before and before.id, after and after.id)))
    soon = (NOW + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await registry.put("", reg("1", expiresAt=soon))
    await registry.put("", reg("2"))
    later = NOW + timedelta(minutes=2)
    assert [r.id[-1] for r in registry.of("", later)] == ["2"]
    assert registry.get("", reg("1").id, later) is None
    assert await registry.sweep(later) == 1
    assert heard[-1] == (reg("1").id, None)
    restarted = Registrations(registry.store)
    await restarted.load()
    assert [r.id[-1] for r in restarted.of("", NOW)] == ["2"]


async def test_reload_catches_up_with_another_process(opener: Any) -> None:
    store = await opener()
    mine, theirs = Registrations(store), Registrations(store)
    heard: list[str] = []
    mine.on_change(lambda tenant, before, after: heard.append(
        "created" if before is None else "deleted" if after is None else "updated"))
    await theirs.put("", reg("1"))
    assert mine.get("", reg("1").id, NOW) is None
    assert await mine.stored("", reg("1").id, NOW)  # what a create checks besides memory
    await mine.reload("", reg("1").id)
    await mine.reload("", reg("1").id)  # nothing new: nobody is told
    await theirs.put("", replace(reg("1"), description="x"))
    await mine.reload("", reg("1").id)
    await theirs.delete("", reg("1").id)
    await mine.reload("", reg("1").id)
    assert heard == ["created", "updated", "deleted"]
    assert mine.empty


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["Vehicle", "Building", "Street"]), min_size=1, max_size=6),
       st.sampled_from(["Vehicle", "Building", "Street"]))
async def test_matching_is_the_query_over_the_stored_ones(types: list[str], wanted: str) -> None:
    registry = Registrations(open_store("memory:"))
    for n, kind in enumerate(types):
        await registry.put("", reg(str(n), information=[{"entities": [{"type": kind}]}]))
    query = registration_query({"type": wanted}, expand)
    found = [r.id for r in registry.matching("", query, NOW)]
    assert found == sorted(reg(str(n)).id for n, kind in enumerate(types) if kind == wanted)


# the MongoDB operations: one replace per write (upsert), one delete, keys encoded
async def test_mongodb_operations_sent() -> None:
    server = OneServer()
    store = MongoStore("mongodb://stand-in/reg", client_factory=server.factory)
    await store.open()
    try:
        registry = Registrations(store)
        assert server.client is not None
        server.client.calls.clear()
        await registry.put("", reg("1", **{"my.prop": 1}))
        writes = [c for c in server.client.calls if c.method == "replace_one"]
        assert [(c.collection, c.args[0], c.kwargs) for c in writes] == [
            (COLLECTION, {"_id": reg("1").id}, {"upsert": True})]
        doc = writes[0].args[1]["doc"]
        assert all("." not in key for key in doc)  # keys encoded for MongoDB
        server.client.calls.clear()
        await registry.delete("", reg("1").id)
        deletes = [c for c in server.client.calls if c.method == "delete_one"]
        assert [(c.collection, c.args[0]) for c in deletes] == [
            (COLLECTION, {"_id": reg("1").id})]
    finally:
        await store.close()


async def test_broker_restart_on_mongodb_keeps_registrations_and_subscriptions() -> None:
    server = OneServer()
    settings_ = Settings(store="mongodb://stand-in/app")
    path = "/ngsi-ld/v1/csourceRegistrations"
    doc = {"id": "urn:ngsi-ld:ContextSourceRegistration:m", "type": "ContextSourceRegistration",
           "information": [{"entities": [{"type": "Vehicle"}]}], "endpoint": "http://s:1"}
    subs = "/ngsi-ld/v1/csourceSubscriptions"
    sub = {"id": "urn:ngsi-ld:Subscription:m", "type": "Subscription",
           "entities": [{"type": "Vehicle"}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}}
    for step in ("create", "read"):
        store = MongoStore("mongodb://stand-in/app", client_factory=server.factory)
        client = TestClient(TestServer(create_app(settings_, store)))
        await client.start_server()
        try:
            if step == "create":
                assert (await client.post(path, json=doc)).status == 201
                assert (await client.post(subs, json=sub)).status == 201
            else:
                got = await client.get(f"{path}/{doc['id']}")
                assert got.status == 200
                assert (await got.json())["endpoint"] == "http://s:1"
                kept = await client.get(f"{subs}/{sub['id']}")
                assert kept.status == 200
                assert (await kept.json())["entities"] == [{"type": "Vehicle"}]
        finally:
            await client.close()
