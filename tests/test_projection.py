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
