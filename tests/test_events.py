"""The change bus: every write reaches the listeners it may concern, diffed once."""

from __future__ import annotations

from collections.abc import Collection

from broker.events import ChangeBus
from ngsi_ld.changes import ChangeEvent
from ngsi_ld.model import Entity

T = "https://example.org/T"
U = "https://example.org/U"


def entity(entity_id: str, kind: str, value: int) -> dict[str, object]:
    return {"id": entity_id, "type": [kind],
            "attrs": {"https://example.org/p": [{"type": "Property", "value": value}]}}


def test_a_listener_hears_only_the_writes_it_may_concern() -> None:
    bus = ChangeBus()
    heard: list[ChangeEvent] = []
    asked: list[tuple[str, str, set[str]]] = []

    def concerns(tenant: str, entity_id: str, types: Collection[str],
                 before: Entity | None, after: Entity | None) -> bool:
        asked.append((tenant, entity_id, set(types)))
        return T in types

    bus.subscribe(heard.append, concerns=concerns)
    bus.publish_change("", "urn:x:1", None, entity("urn:x:1", T, 1))
    bus.publish_change("", "urn:x:2", None, entity("urn:x:2", U, 1))
    # a type change: both the old and the new types are asked about
    bus.publish_change("t1", "urn:x:2", entity("urn:x:2", U, 1), entity("urn:x:2", T, 1))
    assert [(e.tenant, e.entity_id, e.trigger) for e in heard] == [
        ("", "urn:x:1", "entityCreated"), ("t1", "urn:x:2", "entityUpdated")]
    assert asked[2] == ("t1", "urn:x:2", {T, U})
    assert (bus.published, bus.skipped) == (2, 1)


def test_a_listener_without_concerns_hears_every_write_and_no_change_is_no_event() -> None:
    bus = ChangeBus()
    heard: list[ChangeEvent] = []
    unsubscribe = bus.subscribe(heard.append)
    bus.publish_change("", "urn:x:1", None, entity("urn:x:1", U, 1))
    bus.publish_change("", "urn:x:1", entity("urn:x:1", U, 1), entity("urn:x:1", U, 1))
    bus.publish_change("", "urn:x:1", entity("urn:x:1", U, 1), None)
    assert [e.trigger for e in heard] == ["entityCreated", "entityDeleted"]
    unsubscribe()
    bus.publish_change("", "urn:x:1", None, entity("urn:x:1", U, 2))
    assert len(heard) == 2 and bus.skipped == 1


def test_a_listener_is_asked_with_the_states_before_and_after() -> None:
    bus = ChangeBus()
    heard: list[ChangeEvent] = []
    states: list[tuple[object, object]] = []

    def concerns(tenant: str, entity_id: str, types: Collection[str],
                 before: Entity | None, after: Entity | None) -> bool:
        states.append((before, after))
        # a listener that cares for updates of the value 2 only
        return after is not None and after["attrs"]["https://example.org/p"][0]["value"] == 2

    bus.subscribe(heard.append, concerns=concerns)
    first, second = entity("urn:x:1", T, 1), entity("urn:x:1", T, 2)
    bus.publish_change("", "urn:x:1", None, first)
    bus.publish_change("", "urn:x:1", first, second)
    assert states == [(None, first), (first, second)]
    assert [e.trigger for e in heard] == ["entityUpdated"] and bus.skipped == 1
