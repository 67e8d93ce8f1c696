"""The Attribute Projection Language of pick and omit (4.21)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.projection import MAX_DEPTH, Projection, parse_projection


def test_flat_and_linked_projections() -> None:
    assert parse_projection("id,name") == Projection(("id", "name"))
    assert parse_projection("a|b , c") == Projection(("a", "b", "c"))
    assert parse_projection("https://ex.org/speed,ex:temp") == Projection(
        ("https://ex.org/speed", "ex:temp"))
    nested = parse_projection("id,locatedAt{name,isIn{population}}")
    assert nested.names == ("id", "locatedAt")
    assert nested.linked["locatedAt"].linked["isIn"] == Projection(("population",))
    assert nested.depth == 2 and Projection(("a",)).depth == 0


@pytest.mark.parametrize("text", ["", "id;name", "id,,name", "id,", ",id", "a{name", "a{{b}",
                                  "a{,b}", "a{}", "a}", "a b", "1a", "a{b}c"])
def test_invalid_projections(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_projection(text)


def test_nesting_is_bounded() -> None:
    deep = "a{" * (MAX_DEPTH + 1) + "b" + "}" * (MAX_DEPTH + 1)
    with pytest.raises(BadRequestData, match="deeper"):
        parse_projection(deep)


@given(st.text(max_size=40))
def test_any_text_parses_or_is_bad_request_data(text: str) -> None:
    try:
        projection = parse_projection(text)
    except BadRequestData:
        return
    assert projection.names


def test_pipe_and_comma_are_the_same_or_operator() -> None:
    assert parse_projection("name|airQualityLevel") == parse_projection("name,airQualityLevel")


def test_pick_keeps_a_relationship_omit_only_omits_inside_its_linked_entity() -> None:
    got = parse_projection("type,locatedAt{name,isIn{population}}")
    assert got.picked == {"type", "locatedAt"}
    assert got.omitted == {"type"}
    city = got.nested("locatedAt")
    assert city is not None and city.omitted == {"name"}
    assert city.nested("isIn") == Projection(("population",))
    assert got.nested("type") is None


def test_selections_of_one_relationship_merge() -> None:
    got = parse_projection("a{b},a{c{d}}")
    a = got.nested("a")
    assert a is not None and a.picked == {"b", "c"} and got.depth == 2


def test_renamed_expands_every_level_and_stays_hashable() -> None:
    got = parse_projection("id,rel{name}").renamed(lambda n: n if n == "id" else "ex:" + n)
    assert got == Projection(("id", "ex:rel"), {"ex:rel": Projection(("ex:name",))})
    assert hash(got) == hash(parse_projection("id,ex:rel{ex:name}"))


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
    return Projection(tuple(tree), {name: _projection(sub) for name, sub in tree.items()
                                    if sub is not None})


@given(trees, st.sampled_from([",", "|"]))
def test_any_well_formed_projection_parses_to_its_tree(tree: dict, separator: str) -> None:
    assert parse_projection(_text(tree, separator)) == _projection(tree)
