"""Linked entities in notifications: join flat and inline, joinLevel (clause 4.5.23;
ETSI 046_23 to 046_30)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from subscriptions_harness import Harness

from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld import compile_context, core_context_url
from ngsi_ld.timeutil import parse_datetime
from subscriptions import Rendering, parse_members
from subscriptions.joins import joined, linked_entities, relationship_targets

CTX = compile_context(None, {}, core_context_url("1.8"))
V = "https://uri.etsi.org/ngsi-ld/default-context/"
NOW = parse_datetime("2025-06-01T00:00:00Z")


def node(n: str, *links: str, kind: str = "Building", **props: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {V + f"link{i}": [{"type": "Relationship", "object": target}]
                             for i, target in enumerate(links)}
    attrs.update({V + k: [{"type": "Property", "value": v}] for k, v in props.items()})
    return {"id": n, "type": [V + kind], "attrs": attrs}


def rendering(**notification: Any) -> Rendering:
    doc = parse_members({"type": "Subscription", "entities": [{"type": "Building"}],
                         "notification": {"endpoint": {"uri": "http://e.org/n"},
                                          **notification}},
                        CTX.expand_term, NOW, partial=False)
    return Rendering.of(doc, CTX)


def store(*entities: dict[str, Any]) -> Any:
    by_id = {e["id"]: e for e in entities}
    reads: list[list[str]] = []

    async def fetch(ids: list[str]) -> list[dict[str, Any]]:
        reads.append(ids)
        return [by_id[i] for i in ids if i in by_id]

    fetch.reads = reads  # type: ignore[attr-defined]
    return fetch


async def test_flat_appends_each_linked_entity_once() -> None:
    a, b = node("urn:a", "urn:c"), node("urn:b", "urn:c", "urn:a")
    c = node("urn:c", "urn:d", kind="City", name="Paris")
    linked = await linked_entities([a, b], 1, store(a, b, c))
    view = rendering(join="flat")
    data = joined(view, "flat", 1, [view.entity(a), view.entity(b)], [a, b], linked)
    assert [item["id"] for item in data] == ["urn:a", "urn:b", "urn:c"]
    assert data[2] == {"id": "urn:c", "type": "City",
                       "link0": {"type": "Relationship", "object": "urn:d"},
                       "name": {"type": "Property", "value": "Paris"}}


async def test_inline_puts_the_linked_entity_in_the_relationship() -> None:
    a, c = node("urn:a", "urn:c", name="Eiffel"), node("urn:c", kind="City", name="Paris")
    linked = await linked_entities([a], 1, store(a, c))
    view = rendering(join="inline")
    [got] = joined(view, "inline", 1, [view.entity(a)], [a], linked)
    assert got["link0"] == {"type": "Relationship", "object": "urn:c", "entity": {
        "id": "urn:c", "type": "City", "name": {"type": "Property", "value": "Paris"}}}
    simple = rendering(join="inline", format="keyValues")
    [flat] = joined(simple, "inline", 1, [simple.entity(a)], [a], linked)
    assert flat["link0"] == {"id": "urn:c", "type": "City", "name": "Paris"}


async def test_attributes_select_the_notified_entity_only() -> None:
    a, c = node("urn:a", "urn:c", name="Eiffel"), node("urn:c", kind="City", name="Paris")
    view = rendering(join="inline", attributes=["link0"])
    linked = await linked_entities([view.select(a)], 1, store(a, c))
    [got] = joined(view, "inline", 1, [view.entity(a)], [a], linked)
    assert set(got) == {"id", "type", "link0"}
    assert got["link0"]["entity"]["name"] == {"type": "Property", "value": "Paris"}


async def test_join_level_nests_and_stops_at_cycles() -> None:
    a, b, c = node("urn:a", "urn:b"), node("urn:b", "urn:c"), node("urn:c", "urn:a")
    fetch = store(a, b, c)
    linked = await linked_entities([a], 5, fetch)
    assert set(linked) == {"urn:b", "urn:c"} and fetch.reads == [["urn:b"], ["urn:c"]]
    view = rendering(join="inline", joinLevel=5)
    [got] = joined(view, "inline", 5, [view.entity(a)], [a], linked)
    deepest = got["link0"]["entity"]["link0"]["entity"]
    assert deepest["id"] == "urn:c" and "entity" not in deepest["link0"]  # back to urn:a
    assert set(await linked_entities([a], 1, store(a, b, c))) == {"urn:b"}


async def test_missing_targets_are_left_out() -> None:
    a = node("urn:a", "urn:nowhere")
    view = rendering(join="flat")
    linked = await linked_entities([a], 1, store(a))
    assert joined(view, "flat", 1, [view.entity(a)], [a], linked) == [view.entity(a)]


@pytest.mark.parametrize("notification", [{"join": "deep"}, {"joinLevel": 0},
                                          {"joinLevel": "2"}, {"joinLevel": 99}])
def test_bad_join_members_are_bad_request_data(notification: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData, match="join"):
        rendering(**notification)


@given(st.lists(st.sampled_from(["urn:1", "urn:2", 3, None, ["urn:4", "urn:5"]]), max_size=6))
def test_relationship_targets_are_the_string_objects(objects: list[Any]) -> None:
    entity = {"id": "urn:x", "attrs": {V + f"r{i}": [{"type": "Relationship", "object": o}]
                                       for i, o in enumerate(objects)}}
    expected = [t for o in objects for t in (o if isinstance(o, list) else [o])
                if isinstance(t, str)]
    assert relationship_targets(entity) == expected


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = await Harness().start()
    yield harness
    await harness.close()


async def test_a_notification_carries_the_linked_entity(h: Harness) -> None:
    await h.create({"id": "urn:ngsi-ld:City:Paris", "type": "City",
                    "name": {"type": "Property", "value": "Paris"}})
    await h.subscribe({"entities": [{"type": "Building"}], "notification": {
        "endpoint": {"uri": h.receiver.url()}, "join": "flat", "joinLevel": 1}})
    await h.create({"id": "urn:ngsi-ld:Building:1", "type": "Building",
                    "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"}})
    [got] = await h.receiver.wait_for(1)
    assert [item["id"] for item in got.body["data"]] == ["urn:ngsi-ld:Building:1",
                                                         "urn:ngsi-ld:City:Paris"]
