"""5.8 Subscriptions and 5.11 notification behaviour, with a real notification receiver.

The broker under test must reach the receiver: see :mod:`conformance.receiver`
(``NGSI_LD_CONFORMANCE_HOST``, ``NGSI_LD_RECEIVER_HOST``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from conformance.client import Client
from conformance.data import BAD_DATA, EXISTS, NOT_FOUND, create, eid, entity, prop, rel
from conformance.receiver import NotificationReceiver
from conformance.subscribing import SUBS, on_type, sub_path, subscribe

# 5.8.1 Create Subscription

@pytest.mark.clause("5.8.1")
def test_create_is_201_with_location(client: Client, subs: list[str], uid: str,
                                     receiver: NotificationReceiver) -> None:
    sub_id = f"urn:ngsi-ld:Subscription:{uid}"
    reply = client.post(SUBS, {"id": sub_id, "type": "Subscription",
                               **on_type(f"T{uid}", receiver.url(uid))})
    assert reply.status == 201
    subs.append(sub_id)
    assert (reply.header("Location") or "").endswith(sub_id)


@pytest.mark.clause("5.8.1")
def test_create_with_an_existing_id_is_409(client: Client, subs: list[str], uid: str,
                                           receiver: NotificationReceiver) -> None:
    body = {"id": f"urn:ngsi-ld:Subscription:{uid}", "type": "Subscription",
            **on_type(f"T{uid}", receiver.url(uid))}
    assert client.post(SUBS, body).status == 201
    subs.append(body["id"])
    reply = client.post(SUBS, body)
    assert reply.status == 409 and reply.problem_type == EXISTS


@pytest.mark.clause("5.8.1")
@pytest.mark.parametrize("change", [
    {"notification": {"endpoint": {"uri": "ftp://example.org/n"}}},
    {"timeInterval": 10, "watchedAttributes": ["temperature"]},
    {"throttling": -5},
    {"expiresAt": "2000-01-01T00:00:00Z"},
    {"q": "temperature>>1"},
    {"geoQ": {"georel": "near", "geometry": "Point", "coordinates": [1, 2]}},
    {"notification": {"format": "csv", "endpoint": {"uri": "http://example.org/n"}}},
    {"notificationTrigger": ["somethingHappened"]},
])
def test_invalid_subscriptions_are_400(client: Client, uid: str,
                                       change: dict[str, Any]) -> None:
    body = {"type": "Subscription", **on_type(f"T{uid}", "http://example.org/n"), **change}
    reply = client.post(SUBS, body)
    assert reply.status == 400 and reply.problem_type == BAD_DATA
    assert reply.json["detail"]


# 5.8.3 Retrieve Subscription, 5.8.4 Query Subscriptions

@pytest.mark.clause("5.8.3")
def test_retrieve_gives_the_members_and_status(client: Client, subs: list[str], uid: str,
                                               receiver: NotificationReceiver) -> None:
    sub_id = subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid),
                                             watchedAttributes=["temperature"]))
    reply = client.get(sub_path(sub_id))
    assert reply.status == 200
    body = reply.json
    assert body["id"] == sub_id and body["type"] == "Subscription"
    assert body["entities"] == [{"type": f"T{uid}"}]
    assert body["watchedAttributes"] == ["temperature"]
    assert body["notification"]["endpoint"]["uri"] == receiver.url(uid)
    assert body["status"] == "active"


@pytest.mark.clause("5.8.3")
def test_retrieve_unknown_is_404(client: Client, uid: str) -> None:
    reply = client.get(sub_path(f"urn:ngsi-ld:Subscription:none-{uid}"))
    assert reply.status == 404 and reply.problem_type == NOT_FOUND


@pytest.mark.clause("5.8.4")
def test_query_lists_and_counts(client: Client, subs: list[str], uid: str,
                                receiver: NotificationReceiver) -> None:
    for _ in range(3):
        subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid)))
    reply = client.get(f"{SUBS}?count=true&limit=1000")
    assert reply.status == 200
    listed = {s["id"] for s in reply.json}
    assert set(subs) <= listed
    assert int(reply.header("NGSILD-Results-Count") or 0) >= 3
    assert len(client.get(f"{SUBS}?limit=1").json) == 1


# 5.8.2 Update Subscription, 5.8.5 Delete Subscription

@pytest.mark.clause("5.8.2")
def test_update_is_204_and_visible(client: Client, subs: list[str], uid: str,
                                   receiver: NotificationReceiver) -> None:
    sub_id = subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid)))
    reply = client.patch(sub_path(sub_id), {"isActive": False, "throttling": 10})
    assert reply.status == 204
    body = client.get(sub_path(sub_id)).json
    assert body["isActive"] is False and body["status"] == "paused"
    assert body["throttling"] == 10
    assert client.patch(sub_path(sub_id), {"throttling": -1}).status == 400


@pytest.mark.clause("5.8.5")
def test_delete_is_204_then_404(client: Client, subs: list[str], uid: str,
                                receiver: NotificationReceiver) -> None:
    sub_id = subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid)))
    assert client.delete(sub_path(sub_id)).status == 204
    assert client.get(sub_path(sub_id)).status == 404
    assert client.delete(sub_path(sub_id)).status == 404


# 5.11 Notification behaviour, 5.3.1 Notification

@pytest.mark.clause("5.11")
def test_creation_and_update_are_notified(client: Client, subs: list[str], uid: str,
                                          receiver: NotificationReceiver) -> None:
    sub_id = subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid)))
    entity_id = eid(f"T{uid}", uid)
    create(client, entity(entity_id, f"T{uid}", temperature=prop(20)))
    reply = client.patch(f"/ngsi-ld/v1/entities/{entity_id}/attrs",
                         {"temperature": prop(21)})
    assert reply.status == 204
    first, second = receiver.wait(uid, 2)
    assert first.body["type"] == "Notification"
    assert first.body["subscriptionId"] == sub_id
    assert first.body["id"].startswith("urn:") and first.body["notifiedAt"]
    assert first.body["data"][0]["id"] == entity_id
    assert second.body["data"][0]["temperature"]["value"] == 21
    assert "json-ld#context" in first.headers.get("link", "")


@pytest.mark.clause("5.11")
def test_watched_attributes_and_key_values(client: Client, subs: list[str], uid: str,
                                           receiver: NotificationReceiver) -> None:
    subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid),
                                    watchedAttributes=["humidity"],
                                    notification={"format": "keyValues"}))
    entity_id = eid(f"T{uid}", uid)
    create(client, entity(entity_id, f"T{uid}", temperature=prop(20)))
    client.patch(f"/ngsi-ld/v1/entities/{entity_id}/attrs", {"temperature": prop(22)})
    client.post(f"/ngsi-ld/v1/entities/{entity_id}/attrs", {"humidity": prop(50)})
    [got] = receiver.wait(uid, 1)
    assert got.body["data"][0]["humidity"] == 50
    assert got.body["data"][0]["temperature"] == 22
    time.sleep(0.5)
    assert len(receiver.at(uid)) == 1


@pytest.mark.clause("5.11")
def test_receiver_info_headers_and_show_changes(client: Client, subs: list[str], uid: str,
                                                receiver: NotificationReceiver) -> None:
    subscribe(client, subs, on_type(
        f"T{uid}", receiver.url(uid), notificationTrigger=["attributeUpdated"],
        notification={"showChanges": True, "endpoint": {
            "uri": receiver.url(uid), "receiverInfo": [{"key": "fiware-service",
                                                        "value": "openiot"}]}}))
    entity_id = eid(f"T{uid}", uid)
    create(client, entity(entity_id, f"T{uid}", temperature=prop(20),
                          owner=rel("urn:ngsi-ld:Person:a")))
    client.patch(f"/ngsi-ld/v1/entities/{entity_id}/attrs",
                 {"temperature": prop(25), "owner": rel("urn:ngsi-ld:Person:b")})
    [got] = receiver.wait(uid, 1)
    assert got.headers.get("fiware-service") == "openiot"
    data = got.body["data"][0]
    assert data["temperature"]["previousValue"] == 20
    assert data["owner"]["previousObject"] == "urn:ngsi-ld:Person:a"


@pytest.mark.clause("5.8.2")
def test_paused_subscription_sends_nothing(client: Client, subs: list[str], uid: str,
                                           receiver: NotificationReceiver) -> None:
    sub_id = subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid), isActive=False))
    create(client, entity(eid(f"T{uid}", uid), f"T{uid}", temperature=prop(1)))
    time.sleep(0.5)
    assert receiver.at(uid) == []
    assert client.patch(sub_path(sub_id), {"isActive": True}).status == 204
    create(client, entity(eid(f"T{uid}", uid, 2), f"T{uid}", temperature=prop(2)))
    [got] = receiver.wait(uid, 1)
    assert got.body["data"][0]["id"] == eid(f"T{uid}", uid, 2)
