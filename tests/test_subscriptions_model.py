"""Validation of Subscription payloads and their compacted view (clauses 5.2.12 to 5.2.15)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from subscriptions import (
    check_subscription,
    compact_subscription,
    merge_fragment,
    parse_members,
    status_of,
)
from subscriptions.model import check_creation, check_fragment
from subscriptions.state import record_attempt, record_failure, record_success

VOCAB = "https://example.org/vocab/"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def expand(term: str) -> str:
    return term if ":" in term else VOCAB + term


def compact(iri: str) -> str:
    return iri[len(VOCAB):] if iri.startswith(VOCAB) else iri


def full(**extra: Any) -> dict[str, Any]:
    return {"type": "Subscription", "entities": [{"type": "Room"}],
            "notification": {"endpoint": {"uri": "http://example.org/n"}}, **extra}


def test_names_are_expanded_for_storage() -> None:
    doc = parse_members(full(watchedAttributes=["temperature"],
                             entities=[{"type": "Room|(Office;Building)", "id": "urn:x:1"}],
                             notification={"endpoint": {"uri": "http://e.org/n"},
                                           "attributes": ["temperature"]},
                             geoQ={"georel": "within", "geometry": "Polygon",
                                   "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}),
                        expand, NOW, partial=False)
    assert doc["watchedAttributes"] == [VOCAB + "temperature"]
    assert doc["entities"][0]["type"] == f"{VOCAB}Room|({VOCAB}Office;{VOCAB}Building)"
    assert doc["notification"]["attributes"] == [VOCAB + "temperature"]
    assert doc["geoQ"]["geoproperty"] == VOCAB + "location"
    check_subscription(doc)
    orjson.dumps(doc)
    picked = parse_members(full(notification={"endpoint": {"uri": "http://e.org/n"},
                                              "pick": ["id", "temperature"]}),
                           expand, NOW, partial=False)
    assert picked["notification"]["pick"] == ["id", VOCAB + "temperature"]


def test_a_creation_needs_type_and_notification_and_a_fragment_a_member() -> None:
    check_creation(parse_members(full(), expand, NOW, partial=False))
    for missing in ("type", "notification"):
        members = {k: v for k, v in full().items() if k != missing}
        with pytest.raises(BadRequestData, match=missing):
            check_creation(parse_members(members, expand, NOW, partial=True))
    fragment = {"id": "urn:s:1", "type": "Subscription", "throttling": 5}
    check_fragment(fragment, "urn:s:1")
    assert fragment == {"throttling": 5}  # id and type never change
    with pytest.raises(BadRequestData, match="id differs"):
        check_fragment({"id": "urn:s:2", "throttling": 5}, "urn:s:1")
    with pytest.raises(BadRequestData, match="no member"):
        check_fragment({"id": "urn:s:1", "type": "Subscription"}, "urn:s:1")


def test_simplified_is_stored_as_key_values() -> None:
    doc = parse_members(full(notification={"format": "simplified",
                                           "endpoint": {"uri": "http://e.org/n"}}),
                        expand, NOW, partial=False)
    assert doc["notification"]["format"] == "keyValues"


@pytest.mark.parametrize("doc,detail", [
    ({"notification": {"endpoint": {"uri": "http://e.org"}}}, "entities or watchedAttributes"),
    (full(timeInterval=5, throttling=1), "throttling"),
    ({"watchedAttributes": ["a"], "timeInterval": 5,
      "notification": {"endpoint": {"uri": "http://e.org"}}}, "watchedAttributes"),
    (full(notification={"pick": ["a"], "omit": ["b"], "endpoint": {"uri": "http://e.org"}}),
     "pick and"),
    # ETSI 028_08_02/03: attributes cannot be combined with pick or omit
    (full(notification={"pick": ["id"], "attributes": ["id"],
                        "endpoint": {"uri": "http://e.org"}}), "pick and .*attributes"),
    (full(notification={"omit": ["a"], "attributes": ["b"],
                        "endpoint": {"uri": "http://e.org"}}), "omit and .*attributes"),
])
def test_cross_member_rules(doc: dict[str, Any], detail: str) -> None:
    with pytest.raises(BadRequestData, match=detail):
        check_subscription(parse_members(doc, expand, NOW, partial=False))


@pytest.mark.parametrize("period", [1e-9, 0.001, 0.099])
def test_a_time_interval_under_a_tenth_of_a_second_is_refused(period: float) -> None:
    with pytest.raises(BadRequestData, match="timeInterval"):
        parse_members(full(timeInterval=period), expand, NOW, partial=False)
    assert parse_members(full(timeInterval=0.1), expand, NOW, partial=False)["timeInterval"] == 0.1


def test_read_only_members_are_ignored() -> None:
    doc = parse_members(full(status="expired", createdAt="x",
                             notification={"endpoint": {"uri": "http://e.org/n"},
                                           "timesSent": 99, "status": "failed"}),
                        expand, NOW, partial=False)
    assert "status" not in doc and "createdAt" not in doc
    assert doc["notification"] == {"endpoint": {"uri": "http://e.org/n"}}


def test_merge_fragment_replaces_members_and_the_whole_notification() -> None:
    doc = parse_members(full(throttling=3, notification={
        "endpoint": {"uri": "http://e.org/n"}, "format": "concise"}), expand, NOW, partial=False)
    doc["notification"]["timesSent"] = 7  # kept by the broker, read-only for clients
    fragment = parse_members({"throttling": None, "notification": {
        "endpoint": {"uri": "http://e.org/m"}, "sysAttrs": True}}, expand, NOW, partial=True)
    merged = merge_fragment(doc, fragment)
    assert "throttling" not in merged
    # 5.8.2.4: the fragment's notification replaces the stored one (format is gone)
    assert merged["notification"] == {"endpoint": {"uri": "http://e.org/m"},
                                      "sysAttrs": True, "timesSent": 7}
    assert doc["throttling"] == 3  # the stored document is not changed


def test_status_follows_is_active_and_expires_at() -> None:
    doc: dict[str, Any] = {"isActive": True, "expiresAt": "2026-06-01T00:00:00.000Z"}
    assert status_of(doc, "2026-05-01T00:00:00.000Z") == "active"
    assert status_of({**doc, "isActive": False}, "2026-05-01T00:00:00.000Z") == "paused"
    assert status_of(doc, "2026-06-01T00:00:00.000Z") == "expired"
    assert status_of({**doc, "isActive": False}, "2027-01-01T00:00:00.000Z") == "expired"


def test_notification_status_transitions() -> None:
    doc: dict[str, Any] = {"notification": {}}
    record_attempt(doc, "t1")  # counted as it is sent, before any answer (046_11)
    assert doc["notification"] == {"timesSent": 1, "lastNotification": "t1"}
    record_failure(doc, "t1")
    assert doc["notification"] == {"status": "failed", "timesFailed": 1, "lastFailure": "t1",
                                   "timesSent": 1, "lastNotification": "t1"}
    record_attempt(doc, "t2")
    record_success(doc, "t2")
    assert doc["notification"]["status"] == "ok" and doc["notification"]["lastSuccess"] == "t2"
    record_failure(doc, "t3", attempted=False)
    assert doc["notification"]["timesDropped"] == 1 and doc["notification"]["timesSent"] == 2


names = st.from_regex(r"[a-z][a-zA-Z0-9]{0,10}", fullmatch=True)


@given(
    types=st.lists(names, min_size=1, max_size=3, unique=True),
    watched=st.lists(names, min_size=1, max_size=3, unique=True),
    attrs=st.lists(names, min_size=1, max_size=3, unique=True),
    fmt=st.sampled_from(["normalized", "concise", "keyValues"]),
    active=st.booleans(),
)
def test_compacted_view_gives_back_what_the_client_sent(
        types: list[str], watched: list[str], attrs: list[str], fmt: str, active: bool) -> None:
    sent = {"type": "Subscription", "entities": [{"type": "|".join(types)}],
            "watchedAttributes": watched, "isActive": active,
            "notification": {"endpoint": {"uri": "http://e.org/n"}, "attributes": attrs,
                             "format": fmt}}
    doc = parse_members(sent, expand, NOW, partial=False)
    view = compact_subscription(doc, compact, sys_attrs=False, status="active")
    assert view["entities"] == sent["entities"]
    assert view["watchedAttributes"] == watched
    assert view["notification"] == sent["notification"]
    assert view["isActive"] is active


@given(st.dictionaries(st.sampled_from(["q", "throttling", "timeInterval", "expiresAt",
                                        "entities", "notification", "geoQ", "scopeQ",
                                        "isActive", "lang", "datasetId"]),
                       st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                                    lambda c: st.lists(c) | st.dictionaries(st.text(), c),
                                    max_leaves=5)))
def test_arbitrary_members_never_raise_anything_but_bad_request(raw: dict[str, Any]) -> None:
    try:
        doc = parse_members({**full(), **raw}, expand, NOW, partial=False)
        check_subscription(doc)
    except BadRequestData as exc:
        assert exc.detail


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c, max_size=3),
                     max_leaves=5)


@given(st.dictionaries(st.sampled_from(["attributes", "format", "sysAttrs", "showChanges",
                                        "pick", "omit", "join"]), _JSON),
       st.dictionaries(st.sampled_from(["accept", "receiverInfo", "notifierInfo", "timeout",
                                        "cooldown"]), _JSON))
def test_arbitrary_notification_members_never_raise_anything_but_bad_request(
    members: dict[str, Any], endpoint: dict[str, Any]
) -> None:
    notification = {"endpoint": {"uri": "http://e.org/n", **endpoint}, **members}
    try:
        parse_members(full(notification=notification), expand, NOW, partial=False)
    except BadRequestData as exc:
        assert exc.detail
