"""Linked Entity retrieval without I/O (clause 4.5.23): join options, targets, attaching."""

from __future__ import annotations

import pytest

from ngsi_ld.errors import BadRequestData
from ngsi_ld.linking import (
    MAX_JOIN_LEVEL,
    Join,
    attach,
    check_projection_depth,
    link_targets,
    parse_join,
)
from ngsi_ld.projection import parse_projection
from ngsi_ld.representation import render_entity


def test_no_join_or_none_is_no_linked_retrieval() -> None:
    assert parse_join(None) is None
    assert parse_join("@none", "3") is None


def test_join_defaults_to_one_level() -> None:
    assert parse_join("inline") == Join(flat=False, level=1)
    assert parse_join("flat", "2", "urn:a,urn:b") == Join(True, 2, frozenset({"urn:a", "urn:b"}))
    assert parse_join("flat", 3, ["urn:a"], body=True) == Join(True, 3, frozenset({"urn:a"}))


@pytest.mark.parametrize("level, seen", [("2", None), (None, "urn:a"), (2.5, None)])
def test_a_query_body_holds_a_number_and_an_array(level: object, seen: object) -> None:
    with pytest.raises(BadRequestData):
        parse_join("flat", level, seen, body=True)


@pytest.mark.parametrize("join, level, seen", [
    ("sideways", None, None),
    ("inline", "0", None),
    ("inline", 0, None),
    ("inline", "-1", None),
    ("inline", "1.5", None),
    ("inline", True, None),
    ("inline", 2.0, None),
    ("inline", str(MAX_JOIN_LEVEL + 1), None),
    ("inline", None, "not a uri"),
    ("inline", None, [1]),
    (None, "0", None),  # a bad joinLevel is refused even without join
])
def test_bad_join_options_are_bad_request_data(join: object, level: object, seen: object) -> None:
    with pytest.raises(BadRequestData):
        parse_join(join, level, seen)


def test_projection_into_linked_entities_needs_a_join_deep_enough() -> None:
    two_hops = parse_projection("a{b{c}}")
    check_projection_depth(None, parse_projection("a,b"))
    check_projection_depth(Join(False, 2), two_hops)
    with pytest.raises(BadRequestData):
        check_projection_depth(None, two_hops)
    with pytest.raises(BadRequestData):
        check_projection_depth(Join(True, 1), None, two_hops)


ENTITY = {
    "id": "urn:b:1",
    "type": ["Building"],
    "attrs": {
        "name": [{"type": "Property", "value": "x"}],
        "locatedAt": [{"type": "Relationship", "object": "urn:c:1"},
                      {"type": "Relationship", "object": "urn:c:2", "datasetId": "urn:ds:1"}],
        "owners": [{"type": "Relationship", "object": ["urn:p:1", "urn:p:2"]}],
        "route": [{"type": "ListRelationship", "objectList": ["urn:s:1", "urn:s:2"]}],
    },
}


def test_link_targets_lists_every_relationship_target_in_order() -> None:
    assert list(link_targets(ENTITY)) == [
        ("locatedAt", "urn:c:1"), ("locatedAt", "urn:c:2"),
        ("owners", "urn:p:1"), ("owners", "urn:p:2"),
        ("route", "urn:s:1"), ("route", "urn:s:2"),
    ]


def test_attach_sets_the_rendered_entities_on_the_linking_instances() -> None:
    city = {"id": "urn:c:1", "type": "City"}
    person = {"id": "urn:p:2", "type": "Person"}
    stop = {"id": "urn:s:1", "type": "Stop"}
    linked = attach(ENTITY, {("locatedAt", "urn:c:1"): city, ("owners", "urn:p:2"): person,
                             ("route", "urn:s:1"): stop})
    assert ENTITY["attrs"]["locatedAt"][0] == {"type": "Relationship", "object": "urn:c:1"}
    normalized = render_entity(linked)
    assert normalized["locatedAt"][0]["entity"] == city
    assert "entity" not in normalized["locatedAt"][1]  # its target is not linked
    assert normalized["owners"]["entity"] == [person]
    assert normalized["route"]["entityList"] == [stop]
    assert "entity" not in normalized["name"]
    # 4.5.4: simplified, a linked target is replaced by its entity
    simplified = render_entity(linked, fmt="keyValues")
    assert simplified["owners"] == ["urn:p:1", person]
    assert simplified["route"] == [stop, "urn:s:2"]
    assert simplified["locatedAt"] == {"dataset": {"@none": city, "urn:ds:1": "urn:c:2"}}
    assert render_entity(linked, fmt="concise")["owners"] == {
        "object": ["urn:p:1", "urn:p:2"], "entity": [person]}


def test_attach_with_nothing_linked_leaves_the_entity_as_it_is() -> None:
    assert attach(ENTITY, {}) == ENTITY
    assert render_entity(attach(ENTITY, {("x", "urn:c:1"): {}})) == render_entity(ENTITY)
