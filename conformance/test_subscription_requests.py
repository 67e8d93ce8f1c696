"""5.8 Subscription requests: members, ids, paging, and what clients such as filip send.

Cases found by the ETSI NGSI-LD test purposes (028, 029, 030, 031, 032) and by
real clients; each names its clause.
"""

from __future__ import annotations

import pytest

from conformance.client import Client
from conformance.contexts_server import ContextServer
from conformance.data import BAD_DATA, ERR
from conformance.receiver import NotificationReceiver
from conformance.subscribing import SUBS, on_type, sub_path, subscribe


@pytest.mark.clause("5.2.12")
def test_is_active_is_shown_only_when_given(client: Client, subs: list[str], uid: str,
                                            receiver: NotificationReceiver) -> None:
    # default true (5.2.12): the status says "active"; the member is the client's own
    plain = subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid)))
    body = client.get(sub_path(plain)).json
    assert "isActive" not in body and body["status"] == "active"
    paused = subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid), isActive=False))
    body = client.get(sub_path(paused)).json
    assert body["isActive"] is False and body["status"] == "paused"


@pytest.mark.clause("5.2.12")
def test_the_default_notification_trigger_is_shown(client: Client, subs: list[str], uid: str,
                                                   receiver: NotificationReceiver) -> None:
    sub_id = subscribe(client, subs, on_type(f"T{uid}", receiver.url(uid)))
    body = client.get(sub_path(sub_id)).json
    assert body["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]
    client.patch(sub_path(sub_id), {"notificationTrigger": ["entityDeleted"]})
    assert client.get(sub_path(sub_id)).json["notificationTrigger"] == ["entityDeleted"]


@pytest.mark.clause("5.8.3")
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_a_subscription_id_that_is_not_a_uri_is_bad_request_data(client: Client,
                                                                   method: str) -> None:
    reply = client.request(method, f"{SUBS}/InvalidUri",
                           {"isActive": False} if method == "PATCH" else None)
    assert reply.status == 400 and reply.problem_type == BAD_DATA


@pytest.mark.clause("5.8.4")
def test_options_count_is_count_true(client: Client, uid: str,
                                     receiver: NotificationReceiver) -> None:
    # filip lists subscriptions with options=count
    tenant = {"NGSILD-Tenant": f"t{uid}"}
    created: list[str] = []
    for _ in range(2):
        subscribe(client, created, on_type(f"T{uid}", receiver.url(uid)), headers=tenant)
    reply = client.get(f"{SUBS}?options=count", headers=tenant)
    assert reply.status == 200 and reply.header("NGSILD-Results-Count") == "2"
    assert len(reply.json) == 2
    for sub_id in created:
        assert client.delete(sub_path(sub_id), headers=tenant).status == 204


@pytest.mark.clause("5.8.4")
def test_pages_are_linked(client: Client, uid: str, receiver: NotificationReceiver) -> None:
    # 6.3.13: Link rel="prev" / rel="next", typed with the media type of the answer
    tenant = {"NGSILD-Tenant": f"t{uid}"}
    created: list[str] = []
    for _ in range(3):
        subscribe(client, created, on_type(f"T{uid}", receiver.url(uid)), headers=tenant)
    middle = client.get(f"{SUBS}?limit=1&offset=1",
                        headers={**tenant, "Accept": "application/ld+json"})
    assert middle.status == 200 and len(middle.json) == 1
    links = [part.strip() for part in (middle.header("Link") or "").split(",")]
    assert f'<{SUBS}?limit=1&offset=0>; rel="prev"; type="application/ld+json"' in links
    assert f'<{SUBS}?limit=1&offset=2>; rel="next"; type="application/ld+json"' in links
    last = client.get(f"{SUBS}?limit=1&offset=2", headers=tenant)
    assert 'rel="next"' not in (last.header("Link") or "")
    assert 'rel="prev"' in (last.header("Link") or "")
    whole = client.get(f"{SUBS}?limit=10", headers=tenant)
    assert len(whole.json) == 3 and "rel=" not in (whole.header("Link") or "").replace(
        'rel="http://www.w3.org/ns/json-ld#context"', "")
    for sub_id in created:
        assert client.delete(sub_path(sub_id), headers=tenant).status == 204


@pytest.mark.clause("5.8.1")
@pytest.mark.parametrize("projection", [{"pick": ["id"]}, {"omit": ["name"]}])
def test_attributes_with_pick_or_omit_is_bad_request_data(
        client: Client, uid: str, projection: dict[str, list[str]]) -> None:
    body = {"type": "Subscription", **on_type(f"T{uid}", "http://example.org/n", notification={
        "attributes": ["name"], **projection})}
    reply = client.post(SUBS, body)
    assert reply.status == 400 and reply.problem_type == BAD_DATA


@pytest.mark.clause("5.8.1")
def test_an_unavailable_json_ld_context_is_504(client: Client, uid: str,
                                               context_server: ContextServer) -> None:
    missing = f"{context_server.base}/missing-{uid}.jsonld"
    body = {"type": "Subscription", "jsonldContext": missing,
            **on_type(f"T{uid}", "http://example.org/n")}
    reply = client.post(SUBS, body)
    assert reply.status == 504 and reply.problem_type == ERR + "LdContextNotAvailable"
