"""The subscription API over HTTP (clause 5.8): create, retrieve, query, update, delete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from subscriptions_harness import Harness, RecordMemoryStore, room

SUBS = "/ngsi-ld/v1/subscriptions"
BAD = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = await Harness().start()
    yield harness
    await harness.close()


def minimal(h: Harness, **extra: Any) -> dict[str, Any]:
    return {"type": "Subscription", "entities": [{"type": "Room"}],
            "notification": {"endpoint": {"uri": h.receiver.url()}}, **extra}


async def test_create_answers_201_with_location_and_409_on_the_same_id(h: Harness) -> None:
    body = minimal(h, id="urn:ngsi-ld:Subscription:one")
    status, _, headers = await h.request("POST", SUBS, body)
    assert status == 201
    assert headers["Location"] == f"{SUBS}/urn:ngsi-ld:Subscription:one"
    status, problem, _ = await h.request("POST", SUBS, body)
    assert status == 409
    assert problem["type"].endswith("AlreadyExists")


async def test_retrieve_shows_the_members_compacted_and_the_status(h: Harness) -> None:
    sub_id = await h.subscribe({
        "entities": [{"type": "Room", "idPattern": "^urn:ngsi-ld:Room:"}],
        "watchedAttributes": ["temperature"], "q": "temperature>20", "lang": "en",
        "notificationTrigger": ["attributeUpdated"], "throttling": 2,
        "notification": {"attributes": ["temperature"], "format": "keyValues",
                         "endpoint": {"uri": h.receiver.url(), "accept": "application/json",
                                      "receiverInfo": [{"key": "k", "value": "v"}]}},
        "subscriptionName": "hot rooms", "description": "d",
    })
    got = await h.subscription(sub_id)
    assert got["id"] == sub_id and got["type"] == "Subscription"
    assert got["entities"] == [{"type": "Room", "idPattern": "^urn:ngsi-ld:Room:"}]
    assert got["watchedAttributes"] == ["temperature"]
    assert got["notification"]["attributes"] == ["temperature"]
    assert got["notification"]["format"] == "keyValues"
    assert got["q"] == "temperature>20" and got["throttling"] == 2
    # 5.2.12: isActive defaults to true; shown only when the client gave it
    assert got["status"] == "active" and "isActive" not in got
    assert got["subscriptionName"] == "hot rooms"
    assert "createdAt" not in got
    status, with_sys, _ = await h.request("GET", f"{SUBS}/{sub_id}?options=sysAttrs")
    assert status == 200 and "createdAt" in with_sys and "modifiedAt" in with_sys


async def test_names_are_compacted_with_the_request_context(h: Harness) -> None:
    context = {"temp": "https://example.org/temperature", "Room": "https://example.org/Room"}
    status, body, _ = await h.request(
        "POST", SUBS, {**minimal(h, watchedAttributes=["temp"]), "@context": context},
        {"Content-Type": "application/ld+json"})
    assert status == 201, body
    [listed] = (await h.request("GET", SUBS))[1]
    assert listed["watchedAttributes"] == ["https://example.org/temperature"]
    assert listed["entities"] == [{"type": "https://example.org/Room"}]


async def test_query_pages_and_counts(h: Harness) -> None:
    ids = [await h.subscribe(minimal(h, id=f"urn:ngsi-ld:Subscription:{n}")) for n in range(5)]
    status, page, headers = await h.request("GET", f"{SUBS}?limit=2&offset=1&count=true")
    assert status == 200
    assert [s["id"] for s in page] == sorted(ids)[1:3]
    assert headers["NGSILD-Results-Count"] == "5"
    status, problem, _ = await h.request("GET", f"{SUBS}?limit=-1")
    assert status == 400 and problem["type"] == BAD
    status, problem, _ = await h.request("GET", f"{SUBS}?limit=100000")
    assert status == 403


async def test_subscriptions_are_per_tenant(h: Harness) -> None:
    await h.subscribe(minimal(h), **{"NGSILD-Tenant": "a"})
    assert (await h.request("GET", SUBS))[1] == []
    status, listed, _ = await h.request("GET", SUBS, headers={"NGSILD-Tenant": "a"})
    assert status == 200 and len(listed) == 1
    status, _, _ = await h.request("GET", SUBS, headers={"NGSILD-Tenant": "nope"})
    assert status == 404


async def test_update_replaces_the_notification_member(h: Harness) -> None:
    sub_id = await h.subscribe(minimal(h))
    endpoint = {"uri": h.receiver.url()}
    status, body, _ = await h.request("PATCH", f"{SUBS}/{sub_id}", {
        "notification": {"format": "concise", "endpoint": endpoint}, "throttling": 5})
    assert status == 204, body
    got = await h.subscription(sub_id)
    assert got["notification"]["format"] == "concise"
    assert got["notification"]["endpoint"]["uri"] == h.receiver.url()
    assert got["throttling"] == 5
    status, body, _ = await h.request("PATCH", f"{SUBS}/{sub_id}", {"throttling": None})
    assert status == 204, body
    assert "throttling" not in await h.subscription(sub_id)
    # 5.8.2.4: a notification without an endpoint replaces the whole member: refused,
    # and the subscription is left as it was
    status, problem, _ = await h.request("PATCH", f"{SUBS}/{sub_id}",
                                         {"notification": {"format": "keyValues"}})
    assert status == 400 and problem["type"].endswith("BadRequestData")
    assert (await h.subscription(sub_id))["notification"]["format"] == "concise"


async def test_update_rejects_bad_fragments(h: Harness) -> None:
    sub_id = await h.subscribe(minimal(h))
    for fragment in ({}, {"throttling": -1}, {"id": "urn:x:other"},
                     {"timeInterval": 5, "watchedAttributes": ["a"]}):
        status, problem, _ = await h.request("PATCH", f"{SUBS}/{sub_id}", fragment)
        assert status == 400, fragment
        assert problem["detail"]
    status, _, _ = await h.request("PATCH", f"{SUBS}/urn:x:missing", {"throttling": 1})
    assert status == 404


async def test_delete(h: Harness) -> None:
    sub_id = await h.subscribe(minimal(h))
    assert (await h.request("DELETE", f"{SUBS}/{sub_id}"))[0] == 204
    assert (await h.request("GET", f"{SUBS}/{sub_id}"))[0] == 404
    assert (await h.request("DELETE", f"{SUBS}/{sub_id}"))[0] == 404
    await h.create(room(1))
    await asyncio.sleep(0.2)
    assert h.receiver.received == []


@pytest.mark.parametrize("change,fragment", [
    ({"notification": {"endpoint": {"uri": "ftp://example.org/x"}}}, "ftp"),
    ({"notification": {"endpoint": {"uri": "mqtt://broker:1883"}}}, "topic"),
    ({"timeInterval": 10, "watchedAttributes": ["temperature"]}, "watchedAttributes"),
    ({"throttling": -1}, "throttling"),
    ({"throttling": "5"}, "throttling"),
    ({"expiresAt": "2001-01-01T00:00:00Z"}, "past"),
    ({"expiresAt": "tomorrow"}, "expiresAt"),
    ({"q": "temperature>>"}, "q"),
    ({"geoQ": {"georel": "near", "geometry": "Point", "coordinates": [1, 2]}}, "near"),
    ({"geoQ": {"georel": "within", "geometry": "Polygon", "coordinates": "[1"}}, "coordinates"),
    ({"scopeQ": "no-slash"}, "scope"),
    ({"notification": {"format": "xml", "endpoint": {"uri": "http://x.org/n"}}}, "format"),
    ({"notification": {"endpoint": {"uri": "http://x.org/n", "accept": "text/html"}}}, "accept"),
    ({"notification": {"showChanges": True, "format": "keyValues",
                       "endpoint": {"uri": "http://x.org/n"}}}, "showChanges"),
    ({"notificationTrigger": ["entityTouched"]}, "notificationTrigger"),
    ({"entities": [{"id": "urn:x:1"}]}, "type"),
    ({"entities": [{"type": "Room", "idPattern": "("}]}, "idPattern"),
    ({"isActive": "yes"}, "isActive"),
    ({"type": "Subscriptions"}, "type"),
    ({"unknownMember": 1}, "unknownMember"),
    ({"notification": {"endpoint": {"uri": "mqtt://b:1883/t",
                                    "notifierInfo": [{"key": "MQTT-QoS", "value": "3"}]}}},
     "MQTT-QoS"),
])
async def test_invalid_members_are_400_with_a_clear_detail(
        h: Harness, change: dict[str, Any], fragment: str) -> None:
    status, problem, _ = await h.request("POST", SUBS, minimal(h, **change))
    assert status == 400, problem
    assert problem["type"] == BAD
    assert fragment in problem["detail"]


async def test_a_subscription_needs_entities_or_watched_attributes(h: Harness) -> None:
    body = {"type": "Subscription", "notification": {"endpoint": {"uri": h.receiver.url()}}}
    status, problem, _ = await h.request("POST", SUBS, body)
    assert status == 400 and "entities or watchedAttributes" in problem["detail"]
    status, _, _ = await h.request("POST", SUBS, {**body, "watchedAttributes": ["temperature"]})
    assert status == 201


async def test_bad_bodies(h: Harness) -> None:
    assert (await h.request("POST", SUBS, [1, 2]))[0] == 400
    status, problem, _ = await h.request("POST", SUBS, {"type": "Subscription"})
    assert status == 400 and "notification" in problem["detail"]


async def test_subscriptions_survive_a_restart_and_periodic_ones_resume() -> None:
    store = RecordMemoryStore()
    first = await Harness(store).start()
    second = Harness(store)
    try:
        plain = await first.subscribe(minimal(first))
        await first.create(room(1, 7.0))
        periodic = await first.subscribe(minimal(first, timeInterval=0.2))
        await first.receiver.wait_for(3)
        await first.stop()
        await second.start(receiver=first.receiver)
        ids = {s["id"] for s in (await second.request("GET", SUBS))[1]}
        assert ids == {plain, periodic}
        assert (await second.subscription(plain))["notification"]["timesSent"] >= 1
        count = len(first.receiver.received)
        await second.receiver.wait_for(count + 2, timeout=3)
        await second.update("urn:ngsi-ld:Room:1", {"temperature": {"type": "Property",
                                                                   "value": 8.0}})
        bodies = [r.body for r in await second.receiver.wait_for(count + 4, timeout=3)]
        assert any(b["subscriptionId"] == plain and
                   b["data"][0]["temperature"]["value"] == 8.0 for b in bodies)
    finally:
        await second.stop()
        await first.close()


async def test_retrieve_as_json_ld_carries_the_context(h: Harness) -> None:
    sub_id = await h.subscribe(minimal(h))
    status, body, headers = await h.request("GET", f"{SUBS}/{sub_id}",
                                            headers={"Accept": "application/ld+json"})
    assert status == 200 and "@context" in body and "Link" not in headers
    status, body, headers = await h.request("GET", SUBS)
    assert status == 200 and "json-ld#context" in headers["Link"]
    assert (await h.request("GET", SUBS, headers={"Accept": "text/csv"}))[0] == 406
