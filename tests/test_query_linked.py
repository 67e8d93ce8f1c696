"""q terms on Linked Entity attributes (4.9 EXAMPLE 13/14): parsing and rewriting."""

from __future__ import annotations

import pytest

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query import matches, parse_q
from ngsi_ld.query.ast import AttrPath, Comparison, Exists, Hop, Text
from ngsi_ld.query.linked import (
    hinted_types,
    linked_depth,
    linked_terms,
    on_target,
    substitute,
    targets_term,
)
from ngsi_ld.query.model import EntityQuery
from ngsi_ld.query.qformat import format_q
from ngsi_ld.query.typeexpr import TypeName, TypeOr


def test_a_linked_path_names_the_hops_and_the_attribute() -> None:
    got = parse_q('sensor{Device,Probe:humidity.observedAt}>"x";!owner{name}', linked=True)
    first, second = got.terms  # type: ignore[union-attr]
    assert first.path == AttrPath(("humidity",), "observedAt", (),
                                  (Hop("sensor", ("Device", "Probe")),))
    assert second == Exists(AttrPath(("name",), via=(Hop("owner"),)), negated=True)
    assert linked_depth(got) == 1 and linked_depth(parse_q("a{b{c}}", linked=True)) == 2


@pytest.mark.parametrize("text", [
    'managedBy{name}=="Pisa Tower"', "a{b{c[k.l]}}==1", "a{T:b};c==2", "!a{b.unitCode}",
])
def test_linked_paths_print_back(text: str) -> None:
    parsed = parse_q(text, linked=True)
    assert parse_q(format_q(parsed), linked=True) == parsed


@pytest.mark.parametrize("text", ["a{b}==1", "a{b}"])
def test_linked_paths_need_the_caller_to_resolve_them(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_q(text)  # subscriptions, purge and csf do not resolve them


@pytest.mark.parametrize("text", ["a.b{c}==1", "a[k]{c}==1", "a{}==1", "a{b==1", "a{b}}==1"])
def test_malformed_linked_paths(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_q(text, linked=True)


def test_rewriting_a_linked_term() -> None:
    q = parse_q('managedBy{Building:name}=="Pisa";speed>1', linked=True)
    (term,) = linked_terms(q)
    assert on_target(term) == Comparison(AttrPath(("name",)), "==", Text("Pisa"))
    assert hinted_types(term.path.via[0]) == TypeName("Building")
    assert hinted_types(Hop("r", ("A", "B"))) == TypeOr((TypeName("A"), TypeName("B")))
    assert hinted_types(Hop("r")) is None
    rewritten = substitute(q, {term: targets_term("managedBy", ["urn:a", "urn:b", "urn:a"])})
    assert format_q(rewritten) == "managedBy==urn:a,urn:b;speed>1"
    linking = {"id": "urn:x", "type": ["T"], "attrs": {
        "managedBy": [{"type": "Relationship", "object": "urn:b"}],
        "speed": [{"type": "Property", "value": 2}]}}
    assert matches(linking, EntityQuery(q=rewritten))
    never = substitute(q, {term: targets_term("managedBy", [])})
    assert not matches(linking, EntityQuery(q=never))
    assert not matches({"id": "urn:y", "type": ["T"], "attrs": {}}, EntityQuery(q=never))


def test_a_negated_linked_term_negates_the_whole_term() -> None:
    q = parse_q("!owner{name}", linked=True)
    (term,) = linked_terms(q)
    assert on_target(term) == Exists(AttrPath(("name",)))  # look for the name itself
    rewritten = substitute(q, {term: targets_term("owner", ["urn:a"], negated=True)})
    assert format_q(rewritten) == "!owner|owner!=urn:a"
    owned_by_a = {"id": "urn:x", "type": ["T"],
                  "attrs": {"owner": [{"type": "Relationship", "object": "urn:a"}]}}
    owned_by_b = {"id": "urn:y", "type": ["T"],
                  "attrs": {"owner": [{"type": "Relationship", "object": "urn:b"}]}}
    nobody = {"id": "urn:z", "type": ["T"], "attrs": {}}
    assert [matches(e, EntityQuery(q=rewritten)) for e in (owned_by_a, owned_by_b, nobody)] == [
        False, True, True]
    always = targets_term("owner", [], negated=True)
    assert all(matches(e, EntityQuery(q=always)) for e in (owned_by_a, nobody))
