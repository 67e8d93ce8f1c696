"""Linked Entity retrieval (ETSI GS CIM 009 clause 4.5.23): the parts without I/O.

A retrieval or query with ``join=inline`` or ``join=flat`` also returns the
entities its Relationships (and ListRelationships) target, up to ``joinLevel``
hops.  Only locally stored targets are retrievable this way (4.5.23.1); the
HTTP layer fetches them level by level, this module decides what to follow and
how a Linking Entity carries its Linked Entities:

* :class:`Join` and :func:`parse_join`: the request's ``join``, ``joinLevel``
  and ``containedBy`` (5.7.1.3, 5.7.2.3; members of the Query body, 5.2.23);
* :func:`check_projection_depth`: a ``pick``/``omit`` reaching into Linked
  Entities needs a join at least that deep (5.7.1.4, 5.7.2.4);
* :func:`link_targets`: the entity ids an entity links to, attribute by attribute;
* :func:`attach`: the internal-form entity with each linked entity (already
  rendered) set on the instance that links to it, as ``entity`` on a
  Relationship (aligned with ``object`` when that is a list) and
  ``entityList`` on a ListRelationship (aligned with ``objectList``), ``None``
  where a target is not linked.  :mod:`ngsi_ld.representation` renders them
  (4.5.23.2 inline; 4.5.4 simplified).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ngsi_ld.attributes import is_iri
from ngsi_ld.errors import BadRequestData
from ngsi_ld.model import Entity
from ngsi_ld.projection import Projection

__all__ = [
    "MAX_JOIN_LEVEL",
    "Join",
    "attach",
    "check_projection_depth",
    "link_targets",
    "parse_join",
]

#: the deepest joinLevel accepted (4.5.23.1: retrieval is limited to avoid cascades)
MAX_JOIN_LEVEL = 10
JOIN_MODES = ("flat", "inline", "@none")


@dataclass(frozen=True, slots=True)
class Join:
    """How Linked Entities are retrieved: ``flat`` (4.5.23.3) or inline (4.5.23.2)."""

    flat: bool
    #: hops followed from the Linking Entity (joinLevel, 1 = its own Relationships)
    level: int = 1
    #: entity ids encountered before (containedBy): never retrieved again
    contained_by: frozenset[str] = frozenset()


def parse_join(join: Any, join_level: Any = None, contained_by: Any = None, *,
               body: bool = False) -> Join | None:
    """The Join the request asks for, or None (no ``join``, or ``join=@none``).

    From the URL every value is a string (``containedBy`` comma-separated); from a
    Query ``body`` (5.2.23) ``joinLevel`` is a number and ``containedBy`` an array.
    ``joinLevel`` must be a positive integer (at most :data:`MAX_JOIN_LEVEL`)
    and ``containedBy`` hold URIs, whether or not ``join`` is present.
    """
    where = "Query member" if body else "query parameter"
    if join is not None and join not in JOIN_MODES:
        raise BadRequestData(f"{where} join must be flat, inline or @none, not {join!r}")
    if body and (isinstance(join_level, str) or isinstance(contained_by, str)):
        raise BadRequestData(f"{where} joinLevel must be a number and containedBy an array")
    level = 1 if join_level is None else _level(join_level, where)
    seen = frozenset(_uris(contained_by, where)) if contained_by is not None else frozenset()
    if join is None or join == "@none":
        return None
    return Join(flat=join == "flat", level=level, contained_by=seen)


def _level(value: Any, where: str) -> int:
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise BadRequestData(f"{where} joinLevel must be a positive integer, not {value!r}")
        level = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        level = value
    else:
        raise BadRequestData(f"{where} joinLevel must be a positive integer, not {value!r}")
    if level < 1:
        raise BadRequestData(f"{where} joinLevel must be a positive integer, not {value!r}")
    if level > MAX_JOIN_LEVEL:
        raise BadRequestData(f"{where} joinLevel {level} exceeds the maximum {MAX_JOIN_LEVEL}")
    return level


def _uris(value: Any, where: str) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise BadRequestData(f"{where} containedBy must be a list of entity ids")
    uris = [item.strip() for item in items if item.strip()]
    for uri in uris:
        if not is_iri(uri):
            raise BadRequestData(f"{where} containedBy holds {uri!r}, which is not a URI")
    return uris


def check_projection_depth(join: Join | None, *projections: Projection | None) -> None:
    """5.7.1.4/5.7.2.4: a projection into Linked Entities needs a join at least as deep."""
    depth = max((p.depth for p in projections if p is not None), default=0)
    if depth == 0:
        return
    if join is None:
        raise BadRequestData(
            "pick or omit selects Attributes of Linked Entities (with {...}); "
            "that needs join=inline or join=flat"
        )
    if depth > join.level:
        raise BadRequestData(
            f"pick or omit selects Linked Entities {depth} hops away, deeper than "
            f"joinLevel {join.level}"
        )


def link_targets(entity: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(attribute name, target id) for every Relationship and ListRelationship
    target of an internal-form entity, in attribute and instance order."""
    for name, instances in entity.get("attrs", {}).items():
        for inst in instances:
            kind = inst.get("type")
            if kind == "Relationship":
                target = inst.get("object")
                for uri in target if isinstance(target, list) else (target,):
                    if isinstance(uri, str):
                        yield name, uri
            elif kind == "ListRelationship":
                for uri in inst.get("objectList") or ():
                    if isinstance(uri, str):
                        yield name, uri


def attach(entity: Entity, rendered: Mapping[tuple[str, str], Any]) -> Entity:
    """A copy of ``entity`` whose linking instances carry the rendered Linked Entities.

    ``rendered`` maps (attribute name, target id) to the rendered Linked Entity;
    instances none of whose targets is in it are left as they are.
    """
    if not rendered:
        return entity.copy()
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name, instances in entity.get("attrs", {}).items():
        attrs[name] = [_attached(name, inst, rendered) for inst in instances]
    attached = entity.copy()
    attached["attrs"] = attrs
    return attached


def _attached(name: str, inst: dict[str, Any],
              rendered: Mapping[tuple[str, str], Any]) -> dict[str, Any]:
    kind = inst.get("type")
    if kind == "Relationship":
        target = inst.get("object")
        if isinstance(target, list):
            aligned = _aligned(name, target, rendered)
            return {**inst, "entity": aligned} if aligned is not None else inst
        linked = rendered.get((name, target)) if isinstance(target, str) else None
        return {**inst, "entity": linked} if linked is not None else inst
    if kind == "ListRelationship":
        aligned = _aligned(name, inst.get("objectList") or [], rendered)
        return {**inst, "entityList": aligned} if aligned is not None else inst
    return inst


def _aligned(name: str, targets: Iterable[Any],
             rendered: Mapping[tuple[str, str], Any]) -> list[Any] | None:
    aligned = [rendered.get((name, uri)) if isinstance(uri, str) else None for uri in targets]
    return aligned if any(item is not None for item in aligned) else None
