"""5.8.6 and 5.3.1: what a notification carries (context, filters, deletions, joins).

Cases found by the ETSI NGSI-LD test purposes 046_*; each names its clause.
"""

from __future__ import annotations

import pytest

from conformance.client import Client, entity_path, link
from conformance.contexts_server import ContextServer
from conformance.data import NULL, create, eid, entity, prop, rel
from conformance.receiver import NotificationReceiver
from conformance.subscribing import on_type, subscribe

CONTEXT_REL = 'rel="http://www.w3.org/ns/json-ld#context"'


@pytest.mark.clause("5.8.6")
def test_the_link_header_names_the_subscription_context(
        client: Client, subs: list[str], uid: str, receiver: NotificationReceiver,
        context_server: ContextServer) -> None:
    # a single URL, also written as an array of one, is the notification's context
    url = context_server.add(f"/sub-{uid}.jsonld", {"@context": {"name": "https://e.org/name"}})
    body = {**on_type(f"T{uid}", receiver.url(uid)), "@context": [url]}
    subscribe(client, subs, body, content_type="application/ld+json")
    create(client, entity(eid(f"T{uid}", uid), f"T{uid}", name=prop("a")),
           headers={"Link": link(url)})
    [got] = receiver.wait(uid, 1)
    assert got.headers["link"].startswith(f"<{url}>; {CONTEXT_REL}")
    assert got.body["data"][0]["name"] == {"type": "Property", "value": "a"}


@pytest.mark.clause("5.8.6")
def test_json_ld_notifications_give_each_entity_its_context(
        client: Client, subs: list[str], uid: str, receiver: NotificationReceiver) -> None:
    subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid), notification={
        "endpoint": {"uri": receiver.url(uid), "accept": "application/ld+json"}}))
    create(client, entity(eid(f"T{uid}", uid), f"T{uid}", name=prop("a")))
    [got] = receiver.wait(uid, 1)
    assert got.headers["content-type"].startswith("application/ld+json")
    assert "link" not in got.headers
    assert all("@context" in item for item in got.body["data"])


@pytest.mark.clause("4.9")
def test_a_percent_encoded_q_filters_as_in_a_url(client: Client, subs: list[str], uid: str,
                                                 receiver: NotificationReceiver) -> None:
    # as the FIWARE tutorials write it: q=name==%22Eiffel%20Tower%22
    subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid),
                                    q="name==%22Eiffel%20Tower%22"))
    create(client, entity(eid(f"T{uid}", uid, 1), f"T{uid}", name=prop("Louvre")))
    create(client, entity(eid(f"T{uid}", uid, 2), f"T{uid}", name=prop("Eiffel Tower")))
    [got] = receiver.wait(uid, 1)
    assert got.body["data"][0]["id"] == eid(f"T{uid}", uid, 2)


@pytest.mark.clause("5.8.6")
def test_a_deleted_attribute_is_the_null_of_its_kind(client: Client, subs: list[str], uid: str,
                                                     receiver: NotificationReceiver) -> None:
    subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid),
                                    notificationTrigger=["attributeDeleted"],
                                    notification={"showChanges": True}))
    entity_id = eid(f"T{uid}", uid)
    create(client, entity(entity_id, f"T{uid}", owner=rel("urn:ngsi-ld:Person:a"),
                          street={"type": "LanguageProperty", "languageMap": {"fr": "Rue"}}))
    assert client.delete(f"{entity_path(entity_id)}/attrs/owner").status == 204
    assert client.delete(f"{entity_path(entity_id)}/attrs/street").status == 204
    first, second = receiver.wait(uid, 2)
    assert first.body["data"][0]["owner"] == {
        "type": "Relationship", "object": NULL, "previousObject": "urn:ngsi-ld:Person:a"}
    assert second.body["data"][0]["street"] == {
        "type": "LanguageProperty", "languageMap": {"@none": NULL},
        "previousLanguageMap": {"fr": "Rue"}}


@pytest.mark.clause("4.5.23")
@pytest.mark.parametrize("join", ["flat", "inline"])
def test_linked_entities_are_joined(client: Client, subs: list[str], uid: str,
                                    receiver: NotificationReceiver, join: str) -> None:
    city = eid(f"City{uid}", join)
    create(client, entity(city, f"City{uid}", name=prop("Paris")))
    subscribe(client, subs, on_type(f"T{uid}", receiver.url(f"{uid}{join}"),
                                    notification={"join": join, "joinLevel": 1}))
    create(client, entity(eid(f"T{uid}", join), f"T{uid}", locatedAt=rel(city)))
    [got] = receiver.wait(f"{uid}{join}", 1)
    linked = {"id": city, "type": f"City{uid}", "name": {"type": "Property", "value": "Paris"}}
    if join == "flat":
        assert got.body["data"][1] == linked
    else:
        assert got.body["data"][0]["locatedAt"] == {**rel(city), "entity": linked}
