"""Linked entities in notifications (clause 4.5.23; NotificationParams ``join``, ``joinLevel``).

A subscription with ``join`` sends, with each entity, the entities its Relationships
point to, up to ``joinLevel`` hops (default 1):

* ``flat``: the linked entities follow the notified ones in ``data``, each once;
* ``inline``: a Relationship gets an ``entity`` member holding the linked entity
  (in keyValues the Relationship's value is replaced by the linked entity), nested
  down to ``joinLevel``.

Choices:

* linked entities are rendered like the notified ones (format, sysAttrs, lang), but
  whole: ``attributes``, ``pick`` and ``omit`` select the notified entity's members
  only;
* only the Relationships the notified entity shows are followed; an entity already in
  the notification (or already inlined above) is not repeated, so cycles end;
* a target that does not exist is left out; at most ``MAX_LINKED`` entities are read
  per notification.

:func:`linked_entities` reads the store through ``fetch``; the rest is pure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any

from ngsi_ld.model import Entity
from subscriptions.notification import GEO_JSON, Rendering

#: ids -> the entities among them that exist (internal form)
Fetch = Callable[[list[str]], Awaitable[list[Entity]]]
#: most linked entities read for one notification
MAX_LINKED = 1000
JSON = "application/json"


def relationship_targets(entity: Entity) -> list[str]:
    """The ids the Relationships (and ListRelationships) of an internal-form entity name."""
    out: list[Any] = []  # what clients stored: only strings are ids
    for instances in (entity.get("attrs") or {}).values():
        for inst in instances if isinstance(instances, list) else ():
            kind = inst.get("type")
            if kind == "Relationship":
                target = inst.get("object")
                out.extend(target if isinstance(target, list) else [target])
            elif kind == "ListRelationship":
                out.extend(inst.get("objectList") or ())
    return [target for target in out if isinstance(target, str)]


async def linked_entities(roots: Iterable[Entity], level: int, fetch: Fetch) -> dict[str, Entity]:
    """The entities linked from ``roots`` within ``level`` hops, by id (roots excluded)."""
    frontier = list(roots)
    known = {root.get("id") for root in frontier}
    found: dict[str, Entity] = {}
    for _ in range(level):
        targets = sorted({t for entity in frontier for t in relationship_targets(entity)}
                         - known)
        targets = targets[:MAX_LINKED - len(found)]
        if not targets:
            break
        known.update(targets)
        frontier = await fetch(targets)
        found.update((str(entity["id"]), entity) for entity in frontier)
    return found


def joined(rendering: Rendering, join: str, level: int, data: list[dict[str, Any]],
           states: list[Entity | None], linked: dict[str, Entity]) -> list[dict[str, Any]]:
    """``data`` (rendered from ``states``) with the ``linked`` entities, flat or inline."""
    whole = replace(rendering, attrs=None, pick=None, omit=None)
    if join == "flat":
        shown = {state.get("id") for state in states if state is not None}
        return data + [whole.entity(linked[i]) for i in sorted(linked) if i not in shown]
    nested = replace(whole, accept=JSON) if whole.accept == GEO_JSON else whole
    for rendered, state in zip(data, states, strict=True):
        if state is not None:
            target = rendered["properties"] if rendering.accept == GEO_JSON else rendered
            _inline(rendering, nested, target, state, linked, level, {state.get("id")})
    return data


def _inline(rendering: Rendering, nested: Rendering, target: dict[str, Any], state: Entity,
            linked: dict[str, Entity], level: int, seen: set[Any]) -> None:
    for name, instances in rendering.select(state).get("attrs", {}).items():
        if len(instances) != 1 or instances[0].get("type") != "Relationship":
            continue
        obj = instances[0].get("object")
        short = rendering.ctx.compact_iri(name)
        if not isinstance(obj, str) or obj not in linked or obj in seen or short not in target:
            continue
        child = nested.entity(linked[obj])
        if level > 1:
            _inline(nested, nested, child, linked[obj], linked, level - 1, seen | {obj})
        if rendering.fmt == "keyValues":
            target[short] = child
        elif isinstance(target[short], dict):
            target[short] = {**target[short], "entity": child}


__all__ = ["MAX_LINKED", "Fetch", "joined", "linked_entities", "relationship_targets"]
