"""Entity type selection expressions (clause 4.17)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query import (
    TypeAnd,
    TypeExpr,
    TypeName,
    TypeOr,
    any_of_names,
    format_type_expr,
    matches_types,
    parse_type_expr,
    resolve_names,
    type_names,
)


@pytest.mark.parametrize(
    ("text", "types", "expected"),
    [
        ("Car", ["Car"], True),
        ("Car", ["Bus"], False),
        ("Car,Bus", ["Bus"], True),
        ("Car|Bus", ["Bus"], True),
        ("Car;Vehicle", ["Car", "Vehicle"], True),
        ("Car;Vehicle", ["Car"], False),
        ("(Car;Vehicle)|Bus", ["Bus"], True),
        ("Car;(Vehicle|Bus)", ["Car", "Bus"], True),
        ("Car;Vehicle|Bus", ["Bus"], True),
        ("https://ex.org/Car", ["https://ex.org/Car"], True),
    ],
)
def test_type_matching(text: str, types: list[str], expected: bool) -> None:
    assert matches_types(parse_type_expr(text), types) is expected


def test_names_resolve() -> None:
    expr = resolve_names(parse_type_expr("Car;(Bus|ex:Van)"), lambda n: "https://e.org/" + n)
    assert type_names(expr) == ["https://e.org/Car", "https://e.org/Bus", "https://e.org/ex:Van"]
    assert matches_types(expr, ["https://e.org/Car", "https://e.org/ex:Van"])


@pytest.mark.parametrize(
    ("text", "position"),
    [("", 0), ("Car,", 4), ("(Car", 4), ("Car)", 3), ("Car Bus", 4), ("C<r", 0), (",Car", 0)],
)
def test_type_errors(text: str, position: int) -> None:
    with pytest.raises(BadRequestData, match=f"invalid type at position {position}"):
        parse_type_expr(text)


_names = st.text("ABCabc:/#_-.", min_size=1, max_size=6).map(TypeName)
_types: st.SearchStrategy[TypeExpr] = st.recursive(
    _names,
    lambda c: st.one_of(
        st.lists(c, min_size=2, max_size=3).map(lambda t: TypeAnd(tuple(t))),
        st.lists(c, min_size=2, max_size=3).map(lambda t: TypeOr(tuple(t))),
    ),
    max_leaves=6,
)


@given(_types)
def test_format_round_trip(expr: TypeExpr) -> None:
    assert parse_type_expr(format_type_expr(expr)) == expr


@given(st.text(max_size=30))
def test_garbage_only_raises_bad_request_data(text: str) -> None:
    try:
        expr = parse_type_expr(text)
    except BadRequestData as exc:
        assert exc.detail.startswith("invalid type")
    else:
        assert parse_type_expr(format_type_expr(expr)) == expr


@pytest.mark.parametrize(("text", "names"), [
    ("A", ["A"]),
    ("A,B", ["A", "B"]),
    ("A|B|C", ["A", "B", "C"]),
    ("A;B", None),
    ("(A;B)|C", None),
    ("A|(B;C)", None),
])
def test_any_of_names_gives_the_names_of_a_plain_disjunction_only(
        text: str, names: list[str] | None) -> None:
    assert any_of_names(parse_type_expr(text)) == names
    assert any_of_names(None) is None
