"""Scopes and the scopeQ language (ETSI GS CIM 009 clauses 4.18 and 4.19).

A scope is a path such as ``/Madrid/Gardens``.  A scopeQ term is a scope, or a
pattern with ``+`` (exactly one level: ``/Madrid/+/Fountain``) and a final
``#`` (the scope and everything below it: ``/Madrid/#``).  Terms combine with
``;`` (and), ``|`` or ``,`` (or) and parentheses.  An entity matches a term if
any of its scopes does; an entity without scopes matches no term.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query.logic import parse_logic

_SEGMENT = re.compile(r"[^\s/#+\"'<>\\]+")


@dataclass(frozen=True, slots=True)
class ScopeTerm:
    """One pattern, e.g. ``/a/+/c`` or ``/a/#`` (``segments`` without the slashes)."""

    pattern: str

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.pattern.split("/")[1:])


@dataclass(frozen=True, slots=True)
class ScopeAnd:
    terms: tuple[ScopeExpr, ...]


@dataclass(frozen=True, slots=True)
class ScopeOr:
    terms: tuple[ScopeExpr, ...]


ScopeExpr = ScopeTerm | ScopeAnd | ScopeOr


def _leaf(token: str, pos: int) -> ScopeExpr:
    def bad(message: str) -> BadRequestData:
        return BadRequestData(f"invalid scopeQ at position {pos}: {message}")

    if not token.startswith("/"):
        raise bad(f"{token!r} does not start with '/'")
    segments = token.split("/")[1:]
    for index, segment in enumerate(segments):
        if segment == "#":
            if index != len(segments) - 1:
                raise bad("'#' must be the last level")
        elif segment != "+" and not _SEGMENT.fullmatch(segment):
            raise bad(f"invalid level {segment!r} in {token!r}")
    return ScopeTerm(token)


def validate_scope(scope: str) -> None:
    """BadRequestData unless ``scope`` is a concrete scope (no ``+`` or ``#``)."""
    if not isinstance(scope, str) or not scope.startswith("/"):
        raise BadRequestData(f"invalid scope {scope!r}: must be a string starting with '/'")
    for segment in scope.split("/")[1:]:
        if not _SEGMENT.fullmatch(segment):
            raise BadRequestData(f"invalid scope {scope!r}: bad level {segment!r}")


# 4.19 scopeQ
def parse_scope_q(text: str) -> ScopeExpr:
    """Parse a scopeQ expression; BadRequestData (with the position) if invalid."""
    return parse_logic(text, "scopeQ", _leaf, ScopeAnd, ScopeOr)


def scope_matches(pattern: ScopeTerm, scope: str) -> bool:
    """True if one concrete scope is matched by one pattern."""
    wanted = pattern.segments
    actual = scope.split("/")[1:] if scope.startswith("/") else []
    if wanted and wanted[-1] == "#":
        prefix = wanted[:-1]
        if len(actual) < len(prefix):
            return False
        actual = actual[: len(prefix)]
        wanted = prefix
    if len(actual) != len(wanted):
        return False
    return all(w in ("+", a) for w, a in zip(wanted, actual, strict=True))


def matches_scope(expr: ScopeExpr, scopes: str | Iterable[str] | None) -> bool:
    """True if an entity with these scopes is selected by ``expr``."""
    if scopes is None:
        values: list[str] = []
    else:
        values = [scopes] if isinstance(scopes, str) else list(scopes)
    return _match(expr, values)


def _match(expr: ScopeExpr, scopes: list[str]) -> bool:
    if isinstance(expr, ScopeTerm):
        return any(scope_matches(expr, scope) for scope in scopes)
    if isinstance(expr, ScopeAnd):
        return all(_match(term, scopes) for term in expr.terms)
    return any(_match(term, scopes) for term in expr.terms)
