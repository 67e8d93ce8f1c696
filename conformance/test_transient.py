"""4.22 Transient storage of entities and attributes: expiresAt, what expired is never
served, and its deletion is notified as a deletion."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.client import Client, entity_path
from conformance.data import (
    BAD_DATA,
    ENTITIES,
    NULL,
    attr_path,
    create,
    eid,
    entity,
    get,
    is_problem,
    prop,
    rel,
    stored,
)
from conformance.receiver import NotificationReceiver

PAST = "2020-01-01T00:00:00Z"
FUTURE = "2100-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def receiver() -> Iterator[NotificationReceiver]:
    server = NotificationReceiver()
    yield server
    server.close()


@pytest.mark.clause("4.22")
def test_expires_at_is_a_system_attribute(client: Client, uid: str) -> None:
    """Kept as sent at every level, shown with options=sysAttrs only (6.3.11)."""
    entity_id = eid("Vehicle", uid)
    create(client, {**entity(entity_id, "Vehicle",
                             speed=prop(7, expiresAt=FUTURE, sub=prop(2, expiresAt=FUTURE)),
                             owner=rel("urn:ngsi-ld:Person:1", expiresAt=FUTURE)),
                    "expiresAt": FUTURE})
    plain = get(client, entity_id)
    assert plain.status == 200 and b"expiresAt" not in plain.raw
    full = stored(client, entity_id, "options=sysAttrs")
    assert full["expiresAt"] == FUTURE
    assert full["speed"]["expiresAt"] == full["owner"]["expiresAt"] == FUTURE
    assert full["speed"]["sub"]["expiresAt"] == FUTURE


@pytest.mark.clause("4.22")
@pytest.mark.parametrize("when", ["not-a-date", "2026-13-45T00:00:00Z",
                                  "2100-01-01T00:00:00+01:00"])
def test_a_malformed_expiry_is_bad_request_data(client: Client, uid: str, when: str) -> None:
    entity_id = eid("Vehicle", uid)
    assert is_problem(client.post(ENTITIES, {**entity(entity_id, "Vehicle"), "expiresAt": when}),
                      400, BAD_DATA)
    body = entity(entity_id, "Vehicle", speed=prop(1, expiresAt=when))
    assert is_problem(client.post(ENTITIES, body), 400, BAD_DATA)


@pytest.mark.clause("4.22")
def test_an_expired_entity_is_never_served_and_its_id_is_free(client: Client, uid: str) -> None:
    entity_id = eid("Vehicle", uid)
    body = {**entity(entity_id, "Vehicle", speed=prop(1)), "expiresAt": PAST}
    assert client.post(ENTITIES, body).status == 201
    assert get(client, entity_id).status == 404
    listed = client.get(f"{ENTITIES}?type=Vehicle&id={entity_id}")
    assert listed.status == 200 and listed.json == []


@pytest.mark.clause("4.22")
def test_expired_attribute_instances_vanish(client: Client, uid: str) -> None:
    entity_id = eid("Vehicle", uid)
    create(client, entity(entity_id, "Vehicle",
                          speed=[prop(10), prop(20, datasetId="urn:ngsi-ld:d:1", expiresAt=PAST)],
                          owner=rel("urn:ngsi-ld:Person:1", expiresAt=PAST),
                          humidity=prop(60, quality=prop(1, expiresAt=PAST))))
    got = stored(client, entity_id)
    assert got["speed"] == prop(10) and "owner" not in got
    assert got["humidity"] == prop(60)


@pytest.mark.clause("4.22")
def test_expiry_set_and_removed_by_merge(client: Client, uid: str) -> None:
    entity_id = eid("Building", uid)
    create(client, entity(entity_id, "Building", name=prop("x")))
    assert client.patch(entity_path(entity_id), {"expiresAt": FUTURE}).status == 204
    assert stored(client, entity_id, "options=sysAttrs")["expiresAt"] == FUTURE
    assert client.patch(entity_path(entity_id), {"expiresAt": NULL}).status == 204
    assert "expiresAt" not in stored(client, entity_id, "options=sysAttrs")
    assert client.patch(entity_path(entity_id), {"expiresAt": PAST}).status == 204
    assert get(client, entity_id).status == 404


@pytest.mark.clause("5.5.8")
def test_update_replaces_the_expiry_partial_update_keeps_it(client: Client, uid: str) -> None:
    entity_id = eid("Building", uid)
    create(client, entity(entity_id, "Building", t=prop(1, expiresAt=FUTURE),
                          h=prop(1, expiresAt=FUTURE)))
    assert client.patch(entity_path(entity_id) + "/attrs", {"t": prop(2)}).status == 204
    assert client.patch(attr_path(entity_id, "h"), {"value": 2}).status == 204
    got = stored(client, entity_id, "options=sysAttrs")
    assert "expiresAt" not in got["t"] and got["h"]["expiresAt"] == FUTURE


@pytest.mark.clause("4.22")
def test_expiry_is_notified_as_a_deletion(client: Client, uid: str,
                                          receiver: NotificationReceiver) -> None:
    kind = f"Transient{uid}"
    reply = client.post("/ngsi-ld/v1/subscriptions", {
        "type": "Subscription", "entities": [{"type": kind}],
        "notificationTrigger": ["entityDeleted"],
        "notification": {"endpoint": {"uri": receiver.url(uid)}}})
    assert reply.status == 201, reply.raw
    sub = (reply.header("Location") or "").rsplit("/", 1)[1]
    try:
        entity_id = eid(kind, uid)
        create(client, {**entity(entity_id, kind, speed=prop(1)), "expiresAt": PAST})
        (notification,) = receiver.wait(uid, 1)
        assert [e["id"] for e in notification.body["data"]] == [entity_id]
    finally:
        client.delete(f"/ngsi-ld/v1/subscriptions/{sub}")
