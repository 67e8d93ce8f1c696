"""Notifications over HTTP, received by a real local receiver (clauses 5.8, 5.11, 5.3.1)."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from subscriptions_harness import Harness, room

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
ROOM1 = "urn:ngsi-ld:Room:1"


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = await Harness().start()
    yield harness
    await harness.close()


def on_rooms(h: Harness, path: str = "notify", **extra: Any) -> dict[str, Any]:
    notification = extra.pop("notification", {})
    endpoint = notification.pop("endpoint", {})
    return {"entities": [{"type": "Room"}],
            "notification": {"endpoint": {"uri": h.receiver.url(path), **endpoint},
                             **notification},
            **extra}


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone"


async def quiet(h: Harness, seconds: float = 0.3) -> None:
    """Let the broker deliver whatever it would (to check that nothing comes)."""
    await asyncio.sleep(seconds)
    await h.manager.drain()


async def test_notification_shape_and_link_header(h: Harness) -> None:
    sub_id = await h.subscribe(on_rooms(h))
    await h.create(room(1, 21.5))
    [got] = await h.receiver.wait_for(1)
    body = got.body
    assert body["type"] == "Notification"
    assert body["id"].startswith("urn:ngsi-ld:Notification:")
    assert body["subscriptionId"] == sub_id
    assert body["notifiedAt"].endswith("Z")
    assert body["data"] == [{"id": ROOM1, "type": "Room",
                             "temperature": {"type": "Property", "value": 21.5}}]
    assert got.headers["Content-Type"].startswith("application/json")
    assert f"<{CORE}>" in got.headers["Link"]
    assert "@context" not in body


async def test_ld_json_carries_the_context_in_the_body(h: Harness) -> None:
    await h.subscribe(on_rooms(h, notification={"endpoint": {"accept": "application/ld+json"}}))
    await h.create(room(1))
    [got] = await h.receiver.wait_for(1)
    assert got.headers["Content-Type"].startswith("application/ld+json")
    assert "Link" not in got.headers
    assert got.body["@context"] == CORE


async def test_user_context_compacts_the_notification(h: Harness) -> None:
    context = {"temp": "https://example.org/vocab/temperature",
               "Room": "https://example.org/vocab/Room"}
    status, body, _ = await h.request(
        "POST", "/ngsi-ld/v1/subscriptions",
        {"@context": context, "type": "Subscription", "entities": [{"type": "Room"}],
         "watchedAttributes": ["temp"],
         "notification": {"endpoint": {"uri": h.receiver.url()}}},
        {"Content-Type": "application/ld+json"})
    assert status == 201, body
    entity = {"@context": context, "id": ROOM1, "type": "Room",
              "temp": {"type": "Property", "value": 3}}
    status, body, _ = await h.request("POST", "/ngsi-ld/v1/entities", entity,
                                      {"Content-Type": "application/ld+json"})
    assert status == 201, body
    [got] = await h.receiver.wait_for(1)
    assert got.body["data"][0]["temp"] == {"type": "Property", "value": 3}
    assert got.body["data"][0]["type"] == "Room"
    # the Link header names a context (hosted by the broker) that defines "temp"
    assert "/ngsi-ld/v1/jsonldContexts/" in got.headers["Link"]


@pytest.mark.parametrize("trigger", ["entityCreated", "attributeCreated"])
async def test_creation_triggers(h: Harness, trigger: str) -> None:
    await h.subscribe(on_rooms(h, notificationTrigger=[trigger]))
    await h.create(room(1))
    [got] = await h.receiver.wait_for(1)
    assert got.body["data"][0]["id"] == ROOM1


async def test_entity_updated_and_attribute_updated(h: Harness) -> None:
    await h.create(room(1))
    await h.subscribe(on_rooms(h, "updated", notificationTrigger=["attributeUpdated"]))
    await h.subscribe(on_rooms(h, "entity", notificationTrigger=["entityUpdated"]))
    await h.subscribe(on_rooms(h, "created", notificationTrigger=["attributeCreated"]))
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 30}})
    await h.receiver.wait_for(1, "updated")
    await h.receiver.wait_for(1, "entity")
    await quiet(h)
    assert h.receiver.at("created") == []
    await h.append(ROOM1, {"humidity": {"type": "Property", "value": 40}})
    [_, got] = await h.receiver.wait_for(2, "entity")
    assert got.body["data"][0]["humidity"]["value"] == 40
    await h.receiver.wait_for(1, "created")
    await quiet(h)
    assert len(h.receiver.at("updated")) == 1


async def test_attribute_deleted(h: Harness) -> None:
    await h.create(room(1, humidity={"type": "Property", "value": 40}))
    await h.subscribe(on_rooms(h, notificationTrigger=["attributeDeleted"]))
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 30}})
    await h.delete_attr(ROOM1, "humidity")
    [got] = await h.receiver.wait_for(1)
    humidity = got.body["data"][0]["humidity"]
    # deletedAt is a system attribute: shown with sysAttrs (ETSI 046_22_04, 046_22_05)
    assert humidity == {"type": "Property", "value": "urn:ngsi-ld:null"}


async def test_entity_deleted(h: Harness) -> None:
    await h.create(room(1))
    await h.subscribe(on_rooms(h, notificationTrigger=["entityDeleted"]))
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 30}})
    await h.delete(ROOM1)
    [got] = await h.receiver.wait_for(1)
    data = got.body["data"][0]
    assert data["id"] == ROOM1 and data["type"] == "Room" and "deletedAt" in data


async def test_default_triggers_do_not_notify_deletions(h: Harness) -> None:
    await h.create(room(1))
    await h.subscribe(on_rooms(h))
    await h.delete(ROOM1)
    await quiet(h)
    assert h.receiver.received == []


async def test_watched_attributes(h: Harness) -> None:
    await h.create(room(1, humidity={"type": "Property", "value": 40}))
    await h.subscribe(on_rooms(h, watchedAttributes=["humidity"]))
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 30}})
    await h.update(ROOM1, {"humidity": {"type": "Property", "value": 41}})
    [got] = await h.receiver.wait_for(1)
    assert got.body["data"][0]["humidity"]["value"] == 41
    await quiet(h)
    assert len(h.receiver.received) == 1


async def test_q_geoq_and_scopeq_filter_on_the_new_state(h: Harness) -> None:
    await h.subscribe(on_rooms(h, "hot", q="temperature>25"))
    await h.subscribe(on_rooms(h, "near", geoQ={
        "georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [2.0, 41.0]}))
    await h.subscribe(on_rooms(h, "scoped", scopeQ="/Madrid/#"))
    point = {"type": "Point", "coordinates": [2.0, 41.0]}
    await h.create(room(1, 20.0, location={"type": "GeoProperty", "value": point}))
    await h.create(room(2, 30.0, scope="/Madrid/Centro"))
    hot = await h.receiver.wait_for(1, "hot")
    near = await h.receiver.wait_for(1, "near")
    scoped = await h.receiver.wait_for(1, "scoped")
    assert hot[0].body["data"][0]["id"] == "urn:ngsi-ld:Room:2"
    assert near[0].body["data"][0]["id"] == ROOM1
    assert scoped[0].body["data"][0]["id"] == "urn:ngsi-ld:Room:2"
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 26}})
    [_, second] = await h.receiver.wait_for(2, "hot")
    assert second.body["data"][0]["id"] == ROOM1


async def test_entity_selectors_id_and_pattern(h: Harness) -> None:
    await h.subscribe({"entities": [{"type": "Room", "id": "urn:ngsi-ld:Room:2"}],
                       "notification": {"endpoint": {"uri": h.receiver.url("byid")}}})
    await h.subscribe({"entities": [{"type": "Room", "idPattern": "Room:1[0-9]$"}],
                       "notification": {"endpoint": {"uri": h.receiver.url("pattern")}}})
    for n in (1, 2, 12):
        await h.create(room(n))
    await h.create({"id": "urn:ngsi-ld:Room:13", "type": "Office",
                    "temperature": {"type": "Property", "value": 1}})
    byid = await h.receiver.wait_for(1, "byid")
    pattern = await h.receiver.wait_for(1, "pattern")
    await quiet(h)
    assert [r.body["data"][0]["id"] for r in byid] == ["urn:ngsi-ld:Room:2"]
    assert [r.body["data"][0]["id"] for r in h.receiver.at("pattern")] == ["urn:ngsi-ld:Room:12"]
    assert pattern


@pytest.mark.parametrize("fmt,expected", [
    ("normalized", {"type": "Property", "value": 21.0}),
    ("concise", 21.0),
    ("keyValues", 21.0),
    ("simplified", 21.0),
])
async def test_formats(h: Harness, fmt: str, expected: Any) -> None:
    await h.subscribe(on_rooms(h, notification={"format": fmt}))
    await h.create(room(1, 21.0))
    [got] = await h.receiver.wait_for(1)
    assert got.body["data"][0]["temperature"] == expected


async def test_geojson_notification(h: Harness) -> None:
    await h.subscribe(on_rooms(h, notification={"endpoint": {"accept": "application/geo+json"}}))
    point = {"type": "Point", "coordinates": [2.0, 41.0]}
    await h.create(room(1, location={"type": "GeoProperty", "value": point}))
    [got] = await h.receiver.wait_for(1)
    assert got.headers["Content-Type"].startswith("application/geo+json")
    data = got.body["data"]
    assert data["type"] == "FeatureCollection"
    [feature] = data["features"]
    assert feature["id"] == ROOM1 and feature["geometry"] == point
    assert feature["properties"]["temperature"]["value"] == 20.0


async def test_attributes_pick_omit_and_sys_attrs(h: Harness) -> None:
    extra: dict[str, Any] = {"humidity": {"type": "Property", "value": 40}}
    await h.subscribe(on_rooms(h, "attrs", notification={"attributes": ["humidity"]}))
    await h.subscribe(on_rooms(h, "pick", notification={"pick": ["id", "temperature"]}))
    await h.subscribe(on_rooms(h, "omit", notification={"omit": ["temperature"],
                                                        "sysAttrs": True}))
    await h.create(room(1, **extra))
    attrs = (await h.receiver.wait_for(1, "attrs"))[0].body["data"][0]
    pick = (await h.receiver.wait_for(1, "pick"))[0].body["data"][0]
    omit = (await h.receiver.wait_for(1, "omit"))[0].body["data"][0]
    assert set(attrs) == {"id", "type", "humidity"}
    assert set(pick) == {"id", "temperature"}
    assert "temperature" not in omit and "createdAt" in omit and "createdAt" in omit["humidity"]


async def test_show_changes(h: Harness) -> None:
    await h.create(room(1, 20.0, owner={"type": "Relationship", "object": "urn:ngsi-ld:P:1"}))
    await h.subscribe(on_rooms(h, notification={"showChanges": True}))
    await h.subscribe(on_rooms(h, "concise", notification={"showChanges": True,
                                                           "format": "concise"}))
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 25.0},
                           "owner": {"type": "Relationship", "object": "urn:ngsi-ld:P:2"}})
    [got] = await h.receiver.wait_for(1)
    data = got.body["data"][0]
    assert data["temperature"] == {"type": "Property", "value": 25.0, "previousValue": 20.0}
    assert data["owner"]["previousObject"] == "urn:ngsi-ld:P:1"
    [concise] = await h.receiver.wait_for(1, "concise")
    assert concise.body["data"][0]["temperature"] == {"value": 25.0, "previousValue": 20.0}


async def test_receiver_info_becomes_headers_and_tenant_is_sent(h: Harness) -> None:
    info = [{"key": "fiware-service", "value": "openiot"},
            {"key": "X-Auth-Token", "value": "abc"}]
    await h.subscribe(on_rooms(h, notification={"endpoint": {"receiverInfo": info}}),
                      **{"NGSILD-Tenant": "t1"})
    status, body, _ = await h.request("POST", "/ngsi-ld/v1/entities", room(1),
                                      {"NGSILD-Tenant": "t1"})
    assert status == 201, body
    await h.create(room(1))  # default tenant: not this subscription's
    [got] = await h.receiver.wait_for(1)
    assert got.headers["fiware-service"] == "openiot"
    assert got.headers["X-Auth-Token"] == "abc"
    assert got.headers["NGSILD-Tenant"] == "t1"
    await quiet(h)
    assert len(h.receiver.received) == 1


async def test_throttling_coalesces_and_keeps_the_latest_state(h: Harness) -> None:
    sub_id = await h.subscribe(on_rooms(h, throttling=0.4))
    await h.create(room(1, 1.0))
    for value in (2.0, 3.0, 4.0):
        await h.update(ROOM1, {"temperature": {"type": "Property", "value": value}})
    first, second = await h.receiver.wait_for(2, timeout=3)
    assert first.body["data"][0]["temperature"]["value"] == 1.0
    assert [d["temperature"]["value"] for d in second.body["data"]] == [4.0]
    assert second.at - first.at >= 0.35
    await quiet(h, 0.6)
    assert len(h.receiver.received) == 2
    assert (await h.subscription(sub_id))["notification"]["timesSent"] == 2


async def test_periodic_notifications_send_the_current_state(h: Harness) -> None:
    await h.create(room(1, 1.0))
    await h.subscribe(on_rooms(h, timeInterval=0.2))
    first, _ = await h.receiver.wait_for(2, timeout=3)
    assert first.body["data"][0]["temperature"]["value"] == 1.0
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 9.0}})
    before = len(h.receiver.received)
    later = await h.receiver.wait_for(before + 1, timeout=3)
    assert later[-1].body["data"][0]["temperature"]["value"] == 9.0
    gaps = [b.at - a.at for a, b in itertools.pairwise(later)]
    assert min(gaps) >= 0.1


async def test_pause_and_resume(h: Harness) -> None:
    sub_id = await h.subscribe(on_rooms(h, isActive=False))
    assert (await h.subscription(sub_id))["status"] == "paused"
    await h.create(room(1))
    await quiet(h)
    assert h.receiver.received == []
    status, body, _ = await h.request("PATCH", f"/ngsi-ld/v1/subscriptions/{sub_id}",
                                      {"isActive": True})
    assert status == 204, body
    assert (await h.subscription(sub_id))["status"] == "active"
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 5}})
    [got] = await h.receiver.wait_for(1)
    assert got.body["data"][0]["temperature"]["value"] == 5


async def test_expiry(h: Harness) -> None:
    # 3 s for the subscription, the create and its notification before the expiry (a
    # loaded machine took more than 0.5 s), then a wait until just past it
    ends = datetime.now(UTC) + timedelta(seconds=3)
    sub_id = await h.subscribe(on_rooms(h, expiresAt=ends.isoformat()))
    await h.create(room(1))
    await h.receiver.wait_for(1)
    await asyncio.sleep((ends - datetime.now(UTC)).total_seconds() + 0.1)
    assert (await h.subscription(sub_id))["status"] == "expired"
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 5}})
    await quiet(h)
    assert len(h.receiver.received) == 1


async def test_dead_endpoint_does_not_delay_a_live_one(h: Harness) -> None:
    dead = await h.subscribe({"entities": [{"type": "Room"}],
                              "notification": {"endpoint": {"uri": dead_url()}}})
    slow = await h.subscribe(on_rooms(h, "slow"))
    h.receiver.delays["slow"] = 2.0
    await h.subscribe(on_rooms(h, "live"))
    sent = []
    for n in range(20):
        sent.append(asyncio.get_running_loop().time())
        await h.create(room(n))
    got = await h.receiver.wait_entities(20, "live", timeout=2)
    assert [e["id"] for e, _ in got] == [f"urn:ngsi-ld:Room:{n}" for n in range(20)]
    assert max(r.at - s for (_, r), s in zip(got, sent, strict=True)) < 1.0
    await asyncio.sleep(1.0)
    failed = (await h.subscription(dead))["notification"]
    assert failed["status"] == "failed" and failed["timesFailed"] >= 1 and "lastFailure" in failed
    assert (await h.subscription(slow))["status"] == "active"


async def test_failures_are_recorded_and_recovery_sets_ok(h: Harness) -> None:
    h.receiver.statuses["flaky"] = 500
    sub_id = await h.subscribe(on_rooms(h, "flaky"))
    await h.create(room(1))
    await h.manager.drain()
    notification = (await h.subscription(sub_id))["notification"]
    assert notification["status"] == "failed" and notification["timesFailed"] == 1
    assert len(h.receiver.at("flaky")) == 3  # the first attempt and two retries
    h.receiver.statuses["flaky"] = 200
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 5}})
    await h.manager.drain()
    notification = (await h.subscription(sub_id))["notification"]
    assert notification["status"] == "ok" and "lastSuccess" in notification


async def test_queue_overflow_is_counted_not_silent(h: Harness) -> None:
    h.manager.queue_size = 2
    h.receiver.delays["slow"] = 0.5
    sub_id = await h.subscribe(on_rooms(h, "slow"))
    for n in range(6):
        await h.create(room(n))
    notification = (await h.subscription(sub_id))["notification"]
    # the retrieve waits for the delivery in flight, which succeeds: the drops stay counted
    assert notification["timesDropped"] >= 1 and "lastFailure" in notification
    assert notification["timesFailed"] >= notification["timesDropped"]
    metrics = h.app[__import__("broker.app", fromlist=["BROKER"]).BROKER].metrics
    assert metrics.counters["notifications_dropped"] == notification["timesDropped"]


async def test_changes_queued_behind_a_slow_delivery_share_a_notification(h: Harness) -> None:
    h.receiver.delays["slow"] = 0.3
    sub_id = await h.subscribe(on_rooms(h, "slow"))
    for n in range(6):
        await h.create(room(n))
    got = await h.receiver.wait_entities(6, "slow")
    assert [e["id"] for e, _ in got] == [f"urn:ngsi-ld:Room:{n}" for n in range(6)]
    assert len(h.receiver.at("slow")) < 6
    await h.manager.drain()
    sent = (await h.subscription(sub_id))["notification"]["timesSent"]
    assert sent == len(h.receiver.at("slow"))


async def test_cooldown_skips_notifications_after_a_failure(h: Harness) -> None:
    h.receiver.statuses["down"] = 503
    sub_id = await h.subscribe(on_rooms(h, "down", notification={"endpoint": {"cooldown": 60000}}))
    await h.create(room(1))
    await h.manager.drain()
    attempts = len(h.receiver.at("down"))
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 5}})
    await h.manager.drain()
    assert len(h.receiver.at("down")) == attempts  # nothing sent during the cooldown
    notification = (await h.subscription(sub_id))["notification"]
    assert notification["timesFailed"] == 2 and notification["timesDropped"] == 1


async def test_changes_held_by_throttling_survive_an_update_of_the_subscription(
        h: Harness) -> None:
    sub_id = await h.subscribe(on_rooms(h, throttling=30))
    await h.create(room(1, 1.0))
    await h.receiver.wait_for(1)
    await h.update(ROOM1, {"temperature": {"type": "Property", "value": 2.0}})
    status, body, _ = await h.request("PATCH", f"/ngsi-ld/v1/subscriptions/{sub_id}",
                                      {"throttling": None})
    assert status == 204, body
    _, second = await h.receiver.wait_for(2)
    assert second.body["data"][0]["temperature"]["value"] == 2.0
