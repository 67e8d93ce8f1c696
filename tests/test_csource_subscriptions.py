"""Clause 5.11 over HTTP: /csourceSubscriptions and their ContextSourceNotifications."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fuzz_json import JSON_VALUES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from notify_receiver import Receiver

from broker.app import create_app
from broker.config import Settings

SUBS = "/ngsi-ld/v1/csourceSubscriptions"
REGS = "/ngsi-ld/v1/csourceRegistrations"
SUB = "urn:ngsi-ld:Subscription:"
REG = "urn:ngsi-ld:ContextSourceRegistration:"
LD = "application/ld+json"



def subscription(receiver: Receiver, suffix: str = "1", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": SUB + suffix,
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": receiver.url(), "accept": "application/json"}},
    }
    doc.update(extra)
    return {name: value for name, value in doc.items() if value is not None}


def registration(suffix: str = "1", types: tuple[str, ...] = ("Building",),
                 **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": REG + suffix,
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": t}]} for t in types],
        "endpoint": "http://source:1026",
    }
    doc.update(extra)
    return doc


async def post(client: TestClient, path: str, doc: dict[str, Any], status: int = 201) -> Any:
    response = await client.post(path, json=doc)
    assert response.status == status, await response.text()
    return response


async def test_crud(client: TestClient, receiver: Receiver) -> None:
    response = await post(client, SUBS, subscription(receiver, description="d",
                                                     expiresAt="2099-01-01T00:00:00Z"))
    assert response.headers["Location"] == f"{SUBS}/{SUB}1"
    got = await (await client.get(f"{SUBS}/{SUB}1")).json()
    assert got["status"] == "active"
    assert got["entities"] == [{"type": "Building"}]
    assert got["expiresAt"] == "2099-01-01T00:00:00Z"  # as written
    # nothing the client did not write, nothing internal
    assert set(got) == {"id", "type", "entities", "notification", "description",
                        "expiresAt", "status"}
    await post(client, SUBS, subscription(receiver), 409)
    patched = await client.patch(f"{SUBS}/{SUB}1", json={"isActive": False})
    assert patched.status == 204
    assert (await (await client.get(f"{SUBS}/{SUB}1")).json())["status"] == "paused"
    listed = await client.get(f"{SUBS}?count=true")
    assert listed.headers["NGSILD-Results-Count"] == "1"
    assert [s["id"] for s in await listed.json()] == [SUB + "1"]
    assert (await client.delete(f"{SUBS}/{SUB}1")).status == 204
    assert (await client.get(f"{SUBS}/{SUB}1")).status == 404
    assert (await client.delete(f"{SUBS}/{SUB}1")).status == 404
    assert (await client.get(f"{SUBS}/not-a-uri")).status == 400


@pytest.mark.parametrize("wrong", [
    {"notification": None},
    {"type": "ContextSourceRegistration"},
    {"expiresAt": "2001-01-01T00:00:00Z"},
    {"notificationTrigger": ["entityCreated"]},
    {"csf": ""},
    {"temporalQ": {"timerel": "sometime", "timeAt": "2020-01-01T00:00:00Z"}},
    {"temporalQ": {"timeAt": "2020-01-01T00:00:00Z"}},
    {"q": "(("},
    {"entities": []},
])
async def test_bad_subscriptions_are_400(client: TestClient, receiver: Receiver,
                                          wrong: dict[str, Any]) -> None:
    response = await client.post(SUBS, json=subscription(receiver, **wrong))
    assert response.status == 400, await response.text()
    assert (await response.json())["type"].endswith("/BadRequestData")
    assert await (await client.get(SUBS)).json() == []


async def test_notified_initially_then_on_update_and_deletion(
        client: TestClient, receiver: Receiver) -> None:
    await post(client, REGS, registration())
    await post(client, SUBS, subscription(receiver))
    [first] = await receiver.wait_for(1)
    assert first.body["type"] == "ContextSourceNotification"
    assert first.body["subscriptionId"] == SUB + "1"
    assert first.body["triggerReason"] == "newlyMatching"
    assert [r["id"] for r in first.body["data"]] == [REG + "1"]
    assert "Link" in first.headers
    response = await client.patch(f"{REGS}/{REG}1", json={"description": "now"})
    assert response.status == 204
    second = (await receiver.wait_for(2))[1].body
    assert second["triggerReason"] == "updated"
    assert second["data"][0]["description"] == "now"
    # an update that takes it out of the subscription's selection
    await client.patch(f"{REGS}/{REG}1", json={"information": [{"entities": [{"type": "Car"}]}]})
    third = (await receiver.wait_for(3))[2].body
    assert third["triggerReason"] == "noLongerMatching"
    # back in, then gone
    await client.patch(f"{REGS}/{REG}1", json={"information": [{"entities": [
        {"type": "Building"}]}]})
    assert (await receiver.wait_for(4))[3].body["triggerReason"] == "newlyMatching"
    await client.delete(f"{REGS}/{REG}1")
    fifth = (await receiver.wait_for(5))[4].body
    assert fifth["triggerReason"] == "noLongerMatching"
    assert fifth["data"][0]["id"] == REG + "1"
    # a registration of another type says nothing
    await post(client, REGS, registration("2", types=("Car",)))
    await asyncio.sleep(0.2)
    assert len(receiver.received) == 5
    status = await (await client.get(f"{SUBS}/{SUB}1")).json()
    assert status["notification"]["timesSent"] == 5
    assert status["notification"]["status"] == "ok"


async def test_only_relevant_information_is_sent(client: TestClient,
                                                 receiver: Receiver) -> None:
    await post(client, REGS, registration(types=("Building", "Bus")))
    await post(client, SUBS, subscription(receiver))
    [note] = await receiver.wait_for(1)
    assert note.body["data"][0]["information"] == [{"entities": [{"type": "Building"}]}]


async def test_watched_attributes_csf_and_geo(client: TestClient, receiver: Receiver) -> None:
    await post(client, SUBS, subscription(receiver, "a", watchedAttributes=["name"]))
    await post(client, SUBS, subscription(receiver, "b", entities=None,
                                          csf='endpoint=="http://there:1"'))
    await post(client, SUBS, subscription(receiver, "c", geoQ={
        "georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [1, 1]}))
    await post(client, REGS, registration("1", information=[
        {"entities": [{"type": "Building"}], "propertyNames": ["height"]}]))
    await post(client, REGS, registration("2", information=[
        {"entities": [{"type": "Building"}], "propertyNames": ["name"]}],
        endpoint="http://there:1", location={"type": "Point", "coordinates": [1, 1]}))
    await asyncio.sleep(0.3)
    by_sub: dict[str, list[str]] = {}
    for note in receiver.bodies():
        by_sub.setdefault(note["subscriptionId"][-1], []).extend(d["id"] for d in note["data"])
    assert by_sub == {"a": [REG + "2"], "b": [REG + "2"], "c": [REG + "2"]}


async def test_temporal_q_selects_intervals(client: TestClient, receiver: Receiver) -> None:
    await post(client, SUBS, subscription(receiver, temporalQ={
        "timerel": "after", "timeAt": "2020-06-01T00:00:00Z", "timeproperty": "observedAt"}))
    await post(client, REGS, registration("1"))  # latest information only: not selected
    await post(client, REGS, registration("2", observationInterval={
        "startAt": "2020-01-01T00:00:00Z", "endAt": "2030-01-01T00:00:00Z"}))
    [note] = await receiver.wait_for(1)
    assert [d["id"] for d in note.body["data"]] == [REG + "2"]


async def test_paused_and_expired_subscriptions_stay_silent(client: TestClient,
                                                            receiver: Receiver) -> None:
    await post(client, SUBS, subscription(receiver, "1", isActive=False))
    soon = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await post(client, SUBS, subscription(receiver, "2", expiresAt=soon))
    await asyncio.sleep(1.2)
    assert (await (await client.get(f"{SUBS}/{SUB}2")).json())["status"] == "expired"
    await post(client, REGS, registration())
    await asyncio.sleep(0.3)
    assert receiver.received == []


async def test_updating_the_subscription_sends_what_matches_now(client: TestClient,
                                                                receiver: Receiver) -> None:
    await post(client, REGS, registration("1", types=("Car",)))
    await post(client, SUBS, subscription(receiver))
    await asyncio.sleep(0.2)
    assert receiver.received == []
    response = await client.patch(f"{SUBS}/{SUB}1", json={"entities": [{"type": "Car"}]})
    assert response.status == 204
    [note] = await receiver.wait_for(1)
    assert note.body["triggerReason"] == "newlyMatching"
    assert [d["id"] for d in note.body["data"]] == [REG + "1"]


async def test_periodic_subscription(client: TestClient, receiver: Receiver) -> None:
    await post(client, REGS, registration())
    await post(client, SUBS, subscription(receiver, timeInterval=0.2))
    notes = await receiver.wait_for(2, timeout=3)
    assert all([d["id"] for d in n.body["data"]] == [REG + "1"] for n in notes)


async def test_throttling_holds_changes_and_sends_the_latest(client: TestClient,
                                                             receiver: Receiver) -> None:
    await post(client, SUBS, subscription(receiver, throttling=0.5))
    await post(client, REGS, registration())
    await receiver.wait_for(1)
    for text in ("one", "two"):
        await client.patch(f"{REGS}/{REG}1", json={"description": text})
    await asyncio.sleep(0.2)
    assert len(receiver.received) == 1  # held until the period ends
    notes = await receiver.wait_for(2, timeout=3)
    assert notes[1].body["triggerReason"] == "updated"
    assert notes[1].body["data"][0]["description"] == "two"
    await asyncio.sleep(0.6)
    assert len(receiver.received) == 2


async def test_json_ld_notification_and_failures(client: TestClient, receiver: Receiver) -> None:
    receiver.statuses["down"] = 500
    await post(client, REGS, registration())
    doc = subscription(receiver)
    doc["notification"] = {"endpoint": {"uri": receiver.url(), "accept": LD}}
    await post(client, SUBS, doc)
    [note] = await receiver.wait_for(1)
    assert "@context" in note.body and note.headers["Content-Type"] == LD
    failing = subscription(receiver, "2")
    failing["notification"] = {"endpoint": {"uri": receiver.url("down")}}
    await post(client, SUBS, failing)
    await receiver.wait_for(1, "down", timeout=5)
    for _ in range(50):
        got = await (await client.get(f"{SUBS}/{SUB}2")).json()
        if got["notification"].get("status") == "failed":
            break
        await asyncio.sleep(0.1)
    assert got["notification"]["status"] == "failed"
    assert got["notification"]["timesFailed"] == 1


async def test_tenants_are_apart(client: TestClient, receiver: Receiver) -> None:
    response = await client.post(SUBS, json=subscription(receiver),
                                 headers={"NGSILD-Tenant": "north"})
    assert response.status == 201
    await post(client, REGS, registration())  # default tenant: not north's
    await asyncio.sleep(0.2)
    assert receiver.received == []
    response = await client.post(REGS, json=registration(), headers={"NGSILD-Tenant": "north"})
    assert response.status == 201
    [note] = await receiver.wait_for(1)
    assert note.headers["NGSILD-Tenant"] == "north"


async def test_expiring_registration_notifies(client: TestClient, receiver: Receiver) -> None:
    await post(client, SUBS, subscription(receiver))
    soon = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await post(client, REGS, registration(expiresAt=soon))
    notes = await receiver.wait_for(2, timeout=4)
    assert [n.body["triggerReason"] for n in notes] == ["newlyMatching", "noLongerMatching"]


async def test_subscriptions_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    settings = Settings(store=f"sqlite://{tmp_path}/broker.db", outbound_allow="127.0.0.0/8")
    for step in ("create", "use"):
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        try:
            if step == "create":
                await post(client, SUBS, subscription(receiver))
            else:
                assert (await client.get(f"{SUBS}/{SUB}1")).status == 200
                await post(client, REGS, registration())
                [note] = await receiver.wait_for(1)
                assert note.body["subscriptionId"] == SUB + "1"
        finally:
            await client.close()


MEMBERS = st.sampled_from([
    "entities", "watchedAttributes", "q", "csf", "geoQ", "scopeQ", "temporalQ", "isActive",
    "expiresAt", "throttling", "timeInterval", "jsonldContext", "notification", "extra"])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=MEMBERS, value=JSON_VALUES)
async def test_no_subscription_input_is_a_server_error(client: TestClient, member: str,
                                                       value: Any) -> None:
    doc = {"id": SUB + "fuzz", "type": "Subscription", "entities": [{"type": "Building"}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}, member: value}
    response = await client.post(SUBS, json=doc)
    assert response.status in (201, 400), await response.text()
    stored = await client.get(f"{SUBS}/{SUB}fuzz")
    assert stored.status == (200 if response.status == 201 else 404)
    if response.status == 201:
        patched = await client.patch(f"{SUBS}/{SUB}fuzz", json={member: value})
        assert patched.status in (204, 400), await patched.text()
        assert (await client.delete(f"{SUBS}/{SUB}fuzz")).status == 204


@pytest.mark.parametrize("kind", ["entity", "registration"])
async def test_a_subscriber_that_retrieves_at_once_sees_its_own_answer_recorded(
        client: TestClient, receiver: Receiver, kind: str) -> None:
    # the subscriber asks for the subscription while its answer to the notification is
    # still on its way (ETSI 046_05, 047_05 do this): the outcome is already recorded
    receiver.delays["notify"] = 0.3
    if kind == "registration":
        path = SUBS
        await post(client, REGS, registration())
        await post(client, SUBS, subscription(receiver))
    else:
        path = "/ngsi-ld/v1/subscriptions"
        await post(client, path, subscription(receiver))
        await post(client, "/ngsi-ld/v1/entities", {"id": "urn:b:1", "type": "Building",
                                                  "name": {"type": "Property", "value": "x"}})
    await receiver.wait_for(1)
    got = (await (await client.get(f"{path}/{SUB}1")).json())["notification"]
    assert (got["status"], got["timesSent"]) == ("ok", 1)
    assert got["lastSuccess"] == got["lastNotification"]


async def test_a_hung_subscriber_does_not_hang_a_retrieve(client: TestClient,
                                                          receiver: Receiver) -> None:
    receiver.delays["notify"] = 3
    await post(client, "/ngsi-ld/v1/subscriptions", subscription(receiver))
    await post(client, "/ngsi-ld/v1/entities", {"id": "urn:b:1", "type": "Building",
                                                  "name": {"type": "Property", "value": "x"}})
    await receiver.wait_for(1)
    response = await asyncio.wait_for(client.get(f"/ngsi-ld/v1/subscriptions/{SUB}1"), 10)
    got = (await response.json())["notification"]
    assert got["timesSent"] == 1 and "lastSuccess" not in got and "status" not in got
