"""Matching change events against subscriptions, and the index (clause 5.11)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from subscriptions_harness import Harness, room

from broker.state import BROKER
from ngsi_ld.changes import ChangeEvent, diff
from subscriptions import SubscriptionIndex, compile_matcher, parse_members

V = "https://example.org/"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def expand(term: str) -> str:
    return term if ":" in term else V + term


def matcher(**members: Any) -> Any:
    doc = parse_members({"notification": {"endpoint": {"uri": "http://e.org/n"}}, **members},
                        expand, NOW, partial=False)
    return compile_matcher(doc, expand)


def entity(n: int = 1, types: tuple[str, ...] = ("Room",), **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:x:{n}", "type": [V + t for t in types],
            "attrs": {V + k: [{"type": "Property", "value": v, "modifiedAt": str(v)}]
                      for k, v in attrs.items()}}


def event(before: dict[str, Any] | None, after: dict[str, Any] | None) -> ChangeEvent:
    found = diff("", before, after)
    assert found is not None
    return found


ROOMS = {"entities": [{"type": "Room"}]}
CREATE = event(None, entity(t=1))
UPDATE = event(entity(t=1), entity(t=2))
APPEND = event(entity(t=1), entity(t=1, h=5))
REMOVE = event(entity(t=1, h=5), entity(t=1))
DELETE = event(entity(t=1), None)


@pytest.mark.parametrize("triggers,expected", [
    (None, [CREATE, UPDATE, APPEND]),
    (["entityCreated"], [CREATE]),
    (["entityUpdated"], [UPDATE, APPEND, REMOVE]),
    (["entityDeleted"], [DELETE]),
    (["attributeCreated"], [CREATE, APPEND]),
    (["attributeUpdated"], [UPDATE]),
    # the deletion of an entity deletes its attributes (ETSI 046_22_12)
    (["attributeDeleted"], [REMOVE, DELETE]),
])
def test_notification_triggers(triggers: list[str] | None, expected: list[ChangeEvent]) -> None:
    members = dict(ROOMS, **({"notificationTrigger": triggers} if triggers else {}))
    m = matcher(**members)
    events = [CREATE, UPDATE, APPEND, REMOVE, DELETE]
    assert [e for e in events if m.concerns(e)] == expected


def test_watched_attributes_restrict_attribute_triggers() -> None:
    m = matcher(watchedAttributes=["h"])
    assert not m.concerns(UPDATE)
    assert m.concerns(APPEND)


def test_type_expressions_and_selectors() -> None:
    both = matcher(entities=[{"type": "Room;Hot"}])
    either = matcher(entities=[{"type": "Office|Hot"}])
    hot_room = event(None, entity(types=("Room", "Hot"), t=1))
    assert both.concerns(hot_room) and either.concerns(hot_room)
    assert not both.concerns(CREATE) and not either.concerns(CREATE)
    by_id = matcher(entities=[{"type": "Room", "id": "urn:x:2"}])
    assert not by_id.concerns(CREATE)
    assert by_id.concerns(event(None, entity(2, t=1)))


def test_q_is_evaluated_on_the_new_state() -> None:
    m = matcher(q="t>1", **ROOMS)
    assert m.concerns(UPDATE)
    assert not m.concerns(event(entity(t=2), entity(t=0)))


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\%'),
               min_size=1, max_size=12))
def test_a_percent_encoded_q_is_the_q_of_the_query_string(name: str) -> None:
    # q=name==%22Eiffel%20Tower%22 as FIWARE tutorials write it: decoded as a URL would be
    encoded = f"name=={quote(repr_q(name), safe='=')}"
    plain = matcher(q=f"name=={repr_q(name)}", **ROOMS)
    written = matcher(q=encoded, **ROOMS)
    assert written.filters == plain.filters
    named = entity(name=name)
    assert written.concerns(event(None, named))


def repr_q(value: str) -> str:
    return '"' + value + '"'


@given(st.lists(st.sampled_from(["Room", "Office", "Hall"]), min_size=1, max_size=3),
       st.integers(0, 30))
def test_index_candidates_include_every_subscription_that_matches(
        types: list[str], n: int) -> None:
    index = SubscriptionIndex()
    subs = {
        "room": matcher(entities=[{"type": "Room"}]),
        "office-or-hall": matcher(entities=[{"type": "Office|Hall"}]),
        "room-and-hall": matcher(entities=[{"type": "Room;Hall"}]),
        "id7": matcher(entities=[{"type": "Room", "id": "urn:x:7"}]),
        "watched": matcher(watchedAttributes=["t"]),
    }
    for key, m in subs.items():
        index.add(key, "", m)
    change = event(None, entity(n, tuple(types), t=1))
    candidates = index.candidates("", change.entity_id, [V + t for t in types])
    assert {k for k, m in subs.items() if m.concerns(change)} <= candidates
    assert index.candidates("other-tenant", change.entity_id, [V + t for t in types]) == set()
    for tenant, names in (("", [V + t for t in types]), ("", [V + "Desk"]),
                          ("other-tenant", [V + t for t in types])):
        assert index.concerns(tenant, change.entity_id, names) == bool(
            index.candidates(tenant, change.entity_id, names))
    for key in subs:
        index.remove(key)
    assert len(index) == 0 and index.candidates("", change.entity_id, [V + types[0]]) == set()
    assert not index.concerns("", change.entity_id, [V + types[0]])


ATTRS = st.dictionaries(st.sampled_from(["t", "h", "p"]), st.integers(0, 2), max_size=3)


@given(st.lists(st.one_of(st.none(), st.lists(st.sampled_from(["t", "h", "q"]), min_size=1,
                                                max_size=2)), min_size=1, max_size=4),
       ATTRS, ATTRS, st.sampled_from([("Room",), ("Office",), ("Room", "Office")]))
def test_the_index_skips_an_update_only_when_no_subscription_can_notify(
        watched: list[list[str] | None], old: dict[str, int], new: dict[str, int],
        types: tuple[str, ...]) -> None:
    index = SubscriptionIndex()
    subs = {}
    for n, names in enumerate(watched):
        members: dict[str, Any] = {"entities": [{"type": "Room"}]}
        if names is not None:
            members["watchedAttributes"] = sorted(set(names))
        subs[f"s{n}"] = matcher(**members)
        index.add(f"s{n}", "", subs[f"s{n}"])
    before, after = entity(1, ("Room",), **old), entity(1, types, **new)
    names = [V + t for t in {"Room", *types}]
    change = diff("", before, after)
    notified = change is not None and any(m.concerns(change) for m in subs.values())
    may = index.concerns("", "urn:x:1", names, before, after)
    assert may or not notified  # never skips a write that notifies
    if all(w is not None for w in watched) and old.keys() == new.keys() and not any(
            V + name in subs[f"s{n}"].watched and old[name] != new[name]
            for n in range(len(watched)) for name in old):
        assert not may  # no watched attribute changed: nothing to diff
    for key in subs:
        index.remove(key)
    assert not index.concerns("", "urn:x:1", names, before, after) and len(index) == 0


async def test_an_update_of_an_unwatched_attribute_is_not_diffed(h: Harness) -> None:
    await h.manager.create("", {
        "type": "Subscription", "entities": [{"type": "Room"}], "watchedAttributes": ["humidity"],
        "notification": {"endpoint": {"uri": h.receiver.url()}}}, None)
    await h.create(room(1, humidity={"type": "Property", "value": 35}))
    [created] = await h.receiver.wait_for(1)  # the creation made the humidity
    assert created.body["data"][0]["humidity"]["value"] == 35
    bus = h.app[BROKER].service.events
    skipped, evaluations = bus.skipped, h.manager.evaluations
    await h.update(room(1)["id"], {"temperature": {"type": "Property", "value": 30}})
    assert bus.skipped == skipped + 1 and h.manager.evaluations == evaluations
    await h.update(room(1)["id"], {"humidity": {"type": "Property", "value": 40}})
    assert bus.skipped == skipped + 1
    [_, got] = await h.receiver.wait_for(2)
    assert got.body["data"][0]["humidity"]["value"] == 40


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = await Harness().start()
    yield harness
    await harness.close()


async def test_one_update_evaluates_only_the_subscriptions_of_that_entity(h: Harness) -> None:
    for n in range(1000):
        await h.manager.create("", {
            "type": "Subscription",
            "entities": [{"type": "Room", "id": f"urn:ngsi-ld:Room:{n}"}],
            "notification": {"endpoint": {"uri": h.receiver.url(f"room{n}")}}}, None)
    await h.manager.create("", {"type": "Subscription", "entities": [{"type": "Office"}],
                                "notification": {"endpoint": {"uri": h.receiver.url()}}}, None)
    before = h.manager.evaluations
    await h.create(room(500))
    assert h.manager.evaluations - before == 1
    [got] = await h.receiver.wait_for(1, "room500")
    assert got.body["data"][0]["id"] == "urn:ngsi-ld:Room:500"


NUMBERS = st.one_of(st.integers(0, 3), st.sampled_from([1.0, 2.5, True, "2"]))
POINTS = st.tuples(st.sampled_from([114.2, 114.2005, 114.23, 113.9]),
                   st.sampled_from([22.3, 22.3004, 22.31, 22.45]))


def _subscription(kind: int, n: int, point: tuple[float, float], metres: int) -> dict[str, Any]:
    room = [{"type": "Room"}]
    if kind == 0:
        return {"entities": room, "q": f"a=={n}"}
    if kind == 1:
        return {"entities": room, "q": f"a=={n};b==1"}
    if kind == 2:
        return {"entities": [{"type": "Room", "idPattern": f"^urn:x:{n}"}]}
    if kind == 3:
        return {"entities": room, "geoQ": {"georel": f"near;maxDistance=={metres}",
                                           "geometry": "Point", "coordinates": list(point)}}
    if kind == 4:
        x, y = point
        return {"entities": room, "geoQ": {"georel": "within", "geometry": "Polygon",
                                           "coordinates": [[[x - 0.01, y - 0.01],
                                                            [x + 0.01, y - 0.01],
                                                            [x + 0.01, y + 0.01],
                                                            [x - 0.01, y - 0.01]]]}}
    if kind == 5:
        return {"entities": room, "watchedAttributes": ["a" if n % 2 else "h"]}
    if kind == 6:
        return {"entities": room, "watchedAttributes": ["h"],
                "notificationTrigger": ["entityCreated", "entityDeleted", "entityUpdated"]}
    return {"entities": room, "q": f"a>={n}"}  # open: no guard


def _state(n: int, a: Any, point: tuple[float, float] | None,
           polygon: float | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {V + "a": [{"type": "Property", "value": a}],
                             V + "b": [{"type": "Property", "value": 1}]}
    if point is not None:
        x, y = point
        # a polygon of ``polygon`` degrees: 1.0 meets more cells than are looked up
        geometry = ({"type": "Polygon", "coordinates": [[[x, y], [x + polygon, y],
                                                         [x, y + polygon], [x, y]]]}
                    if polygon else {"type": "Point", "coordinates": [x, y]})
        attrs[V + "location"] = [
            {"type": "GeoProperty", "value": geometry}]
    return {"id": f"urn:x:{n}", "type": [V + "Room"], "attrs": attrs}


@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 12), POINTS,
                          st.sampled_from([50, 100, 2000, 500_000])), min_size=1, max_size=12),
       st.integers(0, 12),
       st.one_of(NUMBERS, st.lists(NUMBERS, max_size=3)), st.one_of(st.none(), POINTS),
       st.sampled_from([None, 0.002, 1.0]), st.one_of(NUMBERS, st.lists(NUMBERS, max_size=3)),
       st.booleans(), st.booleans(), st.booleans())
@settings(max_examples=300)
def test_the_guards_never_leave_out_a_subscription_that_matches(
        subs: list[tuple[int, int, tuple[float, float], int]], n: int, a: Any,
        point: tuple[float, float] | None, polygon: float | None, before_a: Any,
        deleted: bool, created: bool, h_before: bool) -> None:
    # subscriptions filed under a q number term, an idPattern prefix or geoQ cells
    # (subscriptions/guards.py) must still be offered every change that concerns them
    index = SubscriptionIndex()
    matchers = {}
    for k, (kind, m, at, metres) in enumerate(subs):
        matchers[f"s{k}"] = matcher(**_subscription(kind, m, at, metres))
        index.add(f"s{k}", "", matchers[f"s{k}"])
    before = _state(n, before_a, point, polygon)
    if h_before:  # then deleted by the write: a watched "h" must still be offered it
        before["attrs"][V + "h"] = [{"type": "Property", "value": 1}]
    after = None if deleted else _state(n, a, point, polygon)
    if created:
        before, after = None, before
    change = diff("", before, after)
    if change is None:
        return
    state = change.after if change.after is not None else change.before
    candidates = index.candidates("", change.entity_id, [V + "Room"], state,
                                  change.attributes)
    assert {k for k, m in matchers.items() if m.concerns(change)} <= candidates
    assert candidates <= index.candidates("", change.entity_id, [V + "Room"])
    for key in matchers:
        index.remove(key)
    assert index.candidates("", change.entity_id, [V + "Room"], state,
                            change.attributes) == set()


def test_the_guards_keep_away_what_cannot_match() -> None:
    index = SubscriptionIndex()
    for n in range(50):
        index.add(f"q{n}", "", matcher(entities=[{"type": "Room"}], q=f"a=={n}"))
        index.add(f"id{n}", "", matcher(entities=[{"type": "Room", "idPattern": f"^urn:y:{n}:"}]))
        index.add(f"geo{n}", "", matcher(entities=[{"type": "Room"}], geoQ={
            "georel": "near;maxDistance==100", "geometry": "Point",
            "coordinates": [114.0 + n * 0.05, 22.3]}))
    state = _state(7, 7, (114.0 + 3 * 0.05, 22.3), None)
    state["id"] = "urn:y:12:7"
    assert index.candidates("", state["id"], [V + "Room"], state) == {"q7", "id12", "geo3"}
    # a geometry over more cells than are looked up is offered every geoQ subscription
    wide = _state(7, 7, (114.0, 22.0), 1.0)
    geo = {k for k in index.candidates("", wide["id"], [V + "Room"], wide) if "geo" in k}
    assert geo == {f"geo{n}" for n in range(50)}
