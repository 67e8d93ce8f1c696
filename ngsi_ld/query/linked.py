"""q terms on Linked Entity attributes (ETSI GS CIM 009 clause 4.9, EXAMPLE 13 and 14).

``sensor{humidity}==40`` holds for an entity whose ``sensor`` Relationship
targets an entity whose humidity is 40; ``sensor{Device:humidity}==40`` only
considers targets of type Device.  The evaluators only read an entity itself, so
such a term is resolved before the query runs, innermost hop first: the
entities matching ``humidity==40`` (of the hinted types) are queried
(:func:`on_target`, :func:`hinted_types`), and the term becomes
``sensor=="urn:a","urn:b"`` (:func:`targets_term`; a term that never holds when
none matches).  ``!sensor{humidity}`` negates the whole term: entities with no
sensor, or whose sensors have no humidity.  This module does the rewriting; the
HTTP layer runs the queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import lru_cache

from ngsi_ld.query.ast import And, AttrPath, Comparison, Exists, Hop, Or, QExpr, Uri, ValueList
from ngsi_ld.query.typeexpr import TypeExpr, TypeName, TypeOr

__all__ = [
    "Term", "hinted_types", "linked_depth", "linked_terms", "on_target", "substitute",
    "targets_term",
]

Term = Comparison | Exists


@lru_cache(maxsize=512)
def linked_depth(expr: QExpr) -> int:
    """The most Relationships a term of ``expr`` follows (0: none)."""
    if isinstance(expr, And | Or):
        return max(linked_depth(term) for term in expr.terms)
    return len(expr.path.via)


def linked_terms(expr: QExpr) -> list[Term]:
    """The terms of ``expr`` on Linked Entity attributes, each once."""
    if isinstance(expr, And | Or):
        return list(dict.fromkeys(t for term in expr.terms for t in linked_terms(term)))
    return [expr] if expr.path.via else []


def on_target(term: Term) -> Term:
    """The term without its hops: what the innermost Linked Entity must hold.

    ``!rel{attr}`` is the negation of the whole term (no linked entity has
    ``attr``), so the innermost level looks for ``attr`` itself.
    """
    path = replace(term.path, via=())
    if isinstance(term, Exists):
        return Exists(path)
    return replace(term, path=path)


def hinted_types(hop: Hop) -> TypeExpr | None:
    """The Entity Types a hop's targets must have (EXAMPLE 14), None: any type."""
    if not hop.types:
        return None
    if len(hop.types) == 1:
        return TypeName(hop.types[0])
    return TypeOr(tuple(TypeName(name) for name in hop.types))


def targets_term(relationship: str, ids: Iterable[str], *, negated: bool = False) -> QExpr:
    """``relationship`` targets one of ``ids`` (a term that never holds without ids);
    ``negated``: the entity has no such Relationship, or it targets none of them."""
    uris = tuple(Uri(i) for i in dict.fromkeys(ids))
    path = AttrPath((relationship,))
    has, lacks = Exists(path), Exists(path, negated=True)
    if not uris:
        return Or((has, lacks)) if negated else And((has, lacks))
    value = uris[0] if len(uris) == 1 else ValueList(uris)
    if negated:
        return Or((lacks, Comparison(path, "!=", value)))
    return Comparison(path, "==", value)


def substitute(expr: QExpr, resolved: Mapping[Term, QExpr]) -> QExpr:
    """``expr`` with each linked term replaced by what it was resolved to."""
    if isinstance(expr, And | Or):
        return type(expr)(tuple(substitute(term, resolved) for term in expr.terms))
    return resolved.get(expr, expr)
