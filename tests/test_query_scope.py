"""scopeQ (clauses 4.18 and 4.19)."""

from __future__ import annotations

import pytest

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query import matches_scope, parse_scope_q, validate_scope


@pytest.mark.parametrize(
    ("query", "scopes", "expected"),
    [
        ("/Madrid", ["/Madrid"], True),
        ("/Madrid", ["/Madrid/Gardens"], False),
        ("/Madrid/#", ["/Madrid"], True),
        ("/Madrid/#", ["/Madrid/Gardens/Rose"], True),
        ("/Madrid/#", ["/Madridx"], False),
        ("/Madrid/+/Rose", ["/Madrid/Gardens/Rose"], True),
        ("/Madrid/+/Rose", ["/Madrid/Rose"], False),
        ("/Madrid/+", ["/Madrid/Gardens/Rose"], False),
        ("/#", ["/Anything"], True),
        ("/#", [], False),
        ("/a;/b", ["/a", "/b"], True),
        ("/a;/b", ["/a"], False),
        ("/a|/b", ["/b"], True),
        ("/a,/b", ["/b"], True),
        ("/a;(/b|/c)", ["/a", "/c"], True),
        ("(/a;/b)|/c", ["/a"], False),
    ],
)
def test_scope_matching(query: str, scopes: list[str], expected: bool) -> None:
    assert matches_scope(parse_scope_q(query), scopes) is expected


def test_entity_without_scope_matches_nothing() -> None:
    assert not matches_scope(parse_scope_q("/#"), None)
    assert matches_scope(parse_scope_q("/a"), "/a")


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("", 0, "empty expression"),
        ("Madrid", 0, "does not start with '/'"),
        ("/a/#/b", 0, "'#' must be the last level"),
        ("/a;", 3, "expected a name, found the end"),
        ("/a;(/b", 6, "expected ')'"),
        ("/a)", 2, "unexpected ')'"),
        ("/a;/b//c", 3, "invalid level ''"),
    ],
)
def test_scope_q_errors(text: str, position: int, message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_scope_q(text)
    assert f"invalid scopeQ at position {position}: " in info.value.detail
    assert message in info.value.detail


def test_validate_scope() -> None:
    validate_scope("/Madrid/Gardens")
    for bad in ("Madrid", "/a/#", "/a/+", "/a//b", 3):
        with pytest.raises(BadRequestData):
            validate_scope(bad)  # type: ignore[arg-type]
