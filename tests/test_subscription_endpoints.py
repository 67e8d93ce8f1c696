"""Endpoints and receiverInfo are checked when a subscription is written (5.2.15), so
that an accepted subscription can be delivered (issue 17: notifications that carried two
Content-Length lines, raw spaces in the request line, or failed for ever)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from subscriptions_harness import Harness, room

BAD_DATA = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
SUBS = "/ngsi-ld/v1/subscriptions"


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = await Harness().start()
    yield harness
    await harness.close()


def sub(uri: str, **endpoint: Any) -> dict[str, Any]:
    return {"type": "Subscription", "entities": [{"type": "Room"}],
            "notification": {"endpoint": {"uri": uri, **endpoint}}}


@pytest.mark.parametrize("key", [
    "Content-Length", "content-length", "Transfer-Encoding", "Host", "Connection", "Keep-Alive",
    "TE", "Trailer", "Upgrade", "Proxy-Authorization", "proxy-connection",
    "X Bad", "", "Bad:Name",
])
async def test_framing_and_hop_by_hop_receiver_info_is_refused_at_create_and_update(
    h: Harness, key: str,
) -> None:
    info = [{"key": key, "value": "1"}]
    status, problem, _ = await h.request("POST", SUBS, sub(h.receiver.url(), receiverInfo=info))
    assert status == 400 and problem["type"] == BAD_DATA
    sub_id = await h.subscribe(sub(h.receiver.url())["notification"] and
                               {k: v for k, v in sub(h.receiver.url()).items() if k != "type"})
    fragment = {"notification": {"endpoint": {"uri": h.receiver.url(), "receiverInfo": info}}}
    status, problem, _ = await h.request("PATCH", f"{SUBS}/{sub_id}", fragment)
    assert status == 400 and problem["type"] == BAD_DATA


@pytest.mark.parametrize("value", ["a\x00b", "a\r\nX-Injected: 1", "caf\u20ac", "\u202eevil",
                                   "x\x7f"])
async def test_header_values_a_request_cannot_carry_are_refused(h: Harness, value: str) -> None:
    info = [{"key": "X-Auth", "value": value}]
    status, problem, _ = await h.request("POST", SUBS, sub(h.receiver.url(), receiverInfo=info))
    assert status == 400 and problem["type"] == BAD_DATA


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:1/a\x00b", "http://127.0.0.1:1/a\r\nHost: x", "http://exa mple.org/n",
    "http://127.0.0.1:1/\ttab", "http://[zz::1]/n",
])
async def test_uris_no_request_line_can_carry_are_refused(h: Harness, uri: str) -> None:
    status, problem, _ = await h.request("POST", SUBS, sub(uri))
    assert status == 400 and problem["type"] == BAD_DATA


async def test_spaces_and_non_latin_characters_in_a_path_are_encoded_and_delivered(
    h: Harness,
) -> None:
    base = h.receiver.url("")
    sub_id = await h.subscribe({k: v for k, v in sub(base + "caf\u00e9 bar/\u20ac?q=a b").items()
                                if k != "type"}
                               | {"notification": {"endpoint": {
                                   "uri": base + "caf\u00e9 bar/\u20ac?q=a b",
                                   "receiverInfo": [{"key": "X-Note", "value": "caf\u00e9"}]}}})
    stored = (await h.subscription(sub_id))["notification"]["endpoint"]["uri"]
    assert stored == base + "caf%C3%A9%20bar/%E2%82%AC?q=a%20b"
    await h.create(room(1))
    [got] = await h.receiver.wait_for(1, path="caf\u00e9 bar/\u20ac")  # decoded by its router
    # sent as the Latin-1 byte E9 (obs-text); the receiver keeps undecodable bytes escaped
    assert got.headers["X-Note"].encode("utf-8", "surrogateescape") == b"caf\xe9"


async def test_valid_receiver_info_is_still_sent(h: Harness) -> None:
    info = [{"key": "X-Api-Key", "value": "secret value\twith tab"},
            {"key": "Authorization", "value": "Bearer abc"}]
    await h.subscribe({k: v for k, v in sub(h.receiver.url(), receiverInfo=info).items()
                       if k != "type"})
    await h.create(room(1))
    [got] = await h.receiver.wait_for(1)
    assert got.headers["X-Api-Key"] == "secret value\twith tab"
    assert got.headers["Authorization"] == "Bearer abc"


async def test_receiver_info_replaces_a_broker_header_of_any_case_never_doubles_it(
    h: Harness,
) -> None:
    info = [{"key": "content-type", "value": "application/json; charset=utf-8"},
            {"key": "user-agent", "value": "city-broker"}]
    await h.subscribe({k: v for k, v in sub(h.receiver.url(), receiverInfo=info).items()
                       if k != "type"})
    await h.create(room(1))
    [got] = await h.receiver.wait_for(1)
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    assert got.headers["User-Agent"] == "city-broker"
    # the receiver's multidict would show a second line as a second value
    assert len([k for k in got.raw_headers if k.lower() == "content-type"]) == 1


@pytest.mark.parametrize("endpoint", [
    {"receiverInfo": [{"key": "Content-Length", "value": "1"}]},
    {"receiverInfo": [{"key": "X-Auth", "value": "a\r\nX-Injected: 1"}]},
    {"uri": "http://127.0.0.1:1/a\x00b"},
])
async def test_registration_subscriptions_check_their_endpoint_the_same_way(
    h: Harness, endpoint: dict[str, Any],
) -> None:
    """5.11: a subscription to registrations notifies through the same endpoint checks."""
    body = sub(h.receiver.url())
    body["notification"]["endpoint"] = {"uri": h.receiver.url(), **endpoint}
    path = "/ngsi-ld/v1/csourceSubscriptions"
    status, problem, _ = await h.request("POST", path, body)
    assert status == 400 and problem["type"] == BAD_DATA
    status, _, headers = await h.request("POST", path, sub(h.receiver.url()))
    assert status == 201  # the same subscription with a sound endpoint is accepted
    fragment = {"notification": {"endpoint": {"uri": h.receiver.url(), **endpoint}}}
    status, problem, _ = await h.request("PATCH", headers["Location"], fragment)
    assert status == 400 and problem["type"] == BAD_DATA
