"""Entity type selection (ETSI GS CIM 009 clause 4.17).

``A,B`` and ``A|B`` select entities of type A or B, ``A;B`` entities of both
types, parentheses group (``(A;B)|C``).  ``;`` binds tighter than ``|``/``,``.
Names are terms or IRIs; :func:`ngsi_ld.query.resolve_names` expands them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query.logic import parse_logic

_NAME = re.compile(r"[^\s\"'<>{}\\^`\[\]]+")


@dataclass(frozen=True, slots=True)
class TypeName:
    name: str


@dataclass(frozen=True, slots=True)
class TypeAnd:
    terms: tuple[TypeExpr, ...]


@dataclass(frozen=True, slots=True)
class TypeOr:
    terms: tuple[TypeExpr, ...]


TypeExpr = TypeName | TypeAnd | TypeOr


def _leaf(token: str, pos: int) -> TypeExpr:
    if not _NAME.fullmatch(token):
        raise BadRequestData(f"invalid type at position {pos}: {token!r} is not a type name")
    return TypeName(token)


# 4.17 Entity type selection language
def parse_type_expr(text: str) -> TypeExpr:
    """Parse a type selector (the ``type`` parameter); BadRequestData if invalid."""
    return parse_logic(text, "type", _leaf, TypeAnd, TypeOr)


def type_names(expr: TypeExpr) -> list[str]:
    """Every name the expression mentions, in order (duplicates kept)."""
    if isinstance(expr, TypeName):
        return [expr.name]
    return [name for term in expr.terms for name in type_names(term)]


def any_of_names(expr: TypeExpr | None) -> list[str] | None:
    """The names of ``expr`` when it is a name or a disjunction of names (``A|B|C``: an
    entity of any of them is selected), in order; None for any other expression (a
    store selects by these names in one index lookup, the others are matched)."""
    if isinstance(expr, TypeName):
        return [expr.name]
    if isinstance(expr, TypeOr) and all(isinstance(t, TypeName) for t in expr.terms):
        return type_names(expr)
    return None


def matches_types(expr: TypeExpr, entity_types: str | Iterable[str]) -> bool:
    """True if an entity with these types is selected by ``expr``."""
    types = {entity_types} if isinstance(entity_types, str) else set(entity_types)
    return _match(expr, types)


def _match(expr: TypeExpr, types: set[str]) -> bool:
    if isinstance(expr, TypeName):
        return expr.name in types
    if isinstance(expr, TypeAnd):
        return all(_match(term, types) for term in expr.terms)
    return any(_match(term, types) for term in expr.terms)


def format_type_expr(expr: TypeExpr) -> str:
    """Print a type expression back; ``parse_type_expr(format_type_expr(e)) == e``."""
    if isinstance(expr, TypeName):
        return expr.name
    sep = ";" if isinstance(expr, TypeAnd) else "|"
    return sep.join(
        format_type_expr(t) if isinstance(t, TypeName) else f"({format_type_expr(t)})"
        for t in expr.terms
    )
