"""The attribute projection language of pick and omit (clause 4.21)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.projection import MAX_DEPTH, Projection, parse_projection


def test_plain_names() -> None:
    got = parse_projection("id,name")
    assert got == Projection(frozenset({"id", "name"}))
    assert got.picked == {"id", "name"} and got.depth == 0


def test_pipe_and_comma_are_the_same_or_operator() -> None:
    assert parse_projection("name|airQualityLevel") == parse_projection("name,airQualityLevel")


def test_a_linked_selection_names_the_relationship_and_the_linked_entity_members() -> None:
    got = parse_projection("id,locatedAt{id,name,isInCountry{description}}")
    assert got.names == {"id"}
    assert got.picked == {"id", "locatedAt"}
    city = got.nested("locatedAt")
    assert city is not None and city.picked == {"id", "name", "isInCountry"}
    country = city.nested("isInCountry")
    assert country == Projection(frozenset({"description"}))
    assert got.depth == 2 and got.nested("id") is None


def test_selections_of_one_relationship_merge() -> None:
    got = parse_projection("a{b},a{c{d}},a")
    assert got.names == {"a"}
    a = got.nested("a")
    assert a is not None and a.picked == {"b", "c"} and a.depth == 1


def test_spaces_around_names_are_ignored() -> None:
    assert parse_projection(" id , locatedAt { name } ") == parse_projection("id,locatedAt{name}")


def test_renamed_expands_every_level() -> None:
    got = parse_projection("id,rel{name}").renamed(lambda n: n if n == "id" else "ex:" + n)
    assert got.picked == {"id", "ex:rel"}
    assert got.nested("ex:rel") == Projection(frozenset({"ex:name"}))


@pytest.mark.parametrize("text", [
    "id;name",               # not an operator
    "id,locatedAt{name",     # unclosed
    "id,locatedAt{{name}",   # double brace
    "id,,name",              # empty member
    "name||airQualityLevel",
    "id,locatedAt{,name}",
    "id,locatedAt{}",
    "",
    ",name",
    "name,",
    "name}",
    "a{b}}",
    "{a}",
    "a b",
])
def test_malformed_projections_are_bad_request_data(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_projection(text)


def test_nesting_is_bounded() -> None:
    deep = "a{" * (MAX_DEPTH + 1) + "b" + "}" * (MAX_DEPTH + 1)
    with pytest.raises(BadRequestData):
        parse_projection(deep)
    ok = "a{" * MAX_DEPTH + "b" + "}" * MAX_DEPTH
    assert parse_projection(ok).depth == MAX_DEPTH


names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True)
trees = st.recursive(
    st.dictionaries(names, st.none(), min_size=1, max_size=3),
    lambda inner: st.dictionaries(names, st.none() | inner, min_size=1, max_size=3),
    max_leaves=12,
)


def _text(tree: dict, separator: str) -> str:
    return separator.join(
        name if sub is None else f"{name}{{{_text(sub, separator)}}}" for name, sub in tree.items()
    )


def _projection(tree: dict) -> Projection:
    return Projection(
        frozenset(name for name, sub in tree.items() if sub is None),
        tuple(sorted((name, _projection(sub)) for name, sub in tree.items() if sub is not None)),
    )


@given(trees, st.sampled_from([",", "|"]))
def test_any_well_formed_projection_parses_to_its_tree(tree: dict, separator: str) -> None:
    assert parse_projection(_text(tree, separator)) == _projection(tree)
