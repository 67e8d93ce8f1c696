"""Purge Entities (ETSI GS CIM 009 v1.9.1 clause 5.6.21; HTTP binding 6.4.3.3).

``DELETE /entities`` with query selectors deletes every matching entity, or,
with ``drop``, only the listed attributes of each, or, with ``keep``, every
attribute but the listed ones (5.6.21.3).  :func:`check_purge` refuses, before
anything is deleted, what 5.6.21.4 forbids:

- ``keep`` and ``drop`` together;
- a purge too wide: at least one of a type selector, an attribute list naming a
  non-system attribute, a query over a non-system attribute, a geo-query, or
  the local scope (``local=true``) must be given; entity ids or an id pattern
  alone do not qualify ("it is not possible to purge a set of entities by only
  specifying desired Entity identifiers");
- Linked Entity retrieval (4.9) in the projection or the query.

The local scope alone purges every entity of the tenant: this broker answers
from its own data only, so the local scope is all of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ngsi_ld.errors import BadRequestData
from ngsi_ld.instances import require_entity, touch
from ngsi_ld.model import Entity, Mutation
from ngsi_ld.operations import delete_entity
from ngsi_ld.params import Params
from ngsi_ld.query.ast import And, Comparison, Exists, Or, QExpr

#: system-generated attributes (4.8): naming only these does not narrow a purge
SYSTEM_ATTRIBUTES = frozenset({"createdAt", "modifiedAt", "deletedAt"})
_GEO = ("georel", "geometry", "coordinates")


def _names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


def q_attribute_names(expr: QExpr) -> list[str]:
    """The attribute names a q expression tests (the first name of each path)."""
    if isinstance(expr, And | Or):
        return [name for term in expr.terms for name in q_attribute_names(term)]
    assert isinstance(expr, Comparison | Exists)
    return [expr.path.names[0]]


def _linked(names: Sequence[str]) -> bool:
    # 4.9 Linked Entity retrieval names a relationship and what to take from the
    # linked entity in braces: owner{name}
    return any("{" in name or "}" in name for name in names)


def check_purge(params: Params | Mapping[str, str],
                q: QExpr | None) -> tuple[list[str], list[str]]:
    """Refuse (BadRequestData) a purge 5.6.21.4 forbids; ``(keep, drop)`` names otherwise.

    ``params`` are the request's query parameters, ``q`` the parsed (not yet
    expanded) ``q`` parameter.
    """
    keep, drop = _names(params.get("keep")), _names(params.get("drop"))
    if "keep" in params and "drop" in params:
        raise BadRequestData("keep and drop cannot be used together in a purge")
    if ("keep" in params and not keep) or ("drop" in params and not drop):
        raise BadRequestData("keep and drop need at least one attribute name")
    attrs = _names(params.get("attrs"))
    if _linked(attrs) or _linked(keep) or _linked(drop):
        raise BadRequestData("Linked Entity retrieval cannot select what a purge deletes")
    q_names = q_attribute_names(q) if q is not None else []
    if _linked(q_names):
        raise BadRequestData("a purge cannot filter on Linked Entity attributes")
    qualifies = (
        params.get("type") is not None
        or any(name not in SYSTEM_ATTRIBUTES for name in attrs)
        or any(name not in SYSTEM_ATTRIBUTES for name in q_names)
        or any(params.get(name) is not None for name in _GEO)
        or params.get("local") == "true"
    )
    if not qualifies:
        raise BadRequestData(
            "a purge needs a type, an attribute or a query naming a non-system attribute, "
            "a geo-query or local=true; entity ids alone do not select what to purge"
        )
    return keep, drop


def purge_mutation(
    entity_id: str, keep: set[str] | None, drop: set[str] | None, now: str
) -> Mutation:
    """The change a purge makes to one entity (attribute names expanded).

    Neither ``keep`` nor ``drop``: the entity is deleted.  ``drop``: those
    attributes are removed; ``keep``: all others are.  An entity deleted since it
    matched is ResourceNotFound, which the purge ignores.
    """
    if keep is None and drop is None:
        return delete_entity(entity_id)

    def mutation(current: Entity | None) -> Entity | None:
        entity = require_entity(current, entity_id)  # a private copy
        attrs = entity.get("attrs") or {}
        gone = [
            name for name in attrs
            if (drop is not None and name in drop) or (keep is not None and name not in keep)
        ]
        if not gone:
            return current
        for name in gone:
            del attrs[name]
        return touch(entity, now)

    return mutation


__all__ = ["SYSTEM_ATTRIBUTES", "check_purge", "purge_mutation", "q_attribute_names"]
