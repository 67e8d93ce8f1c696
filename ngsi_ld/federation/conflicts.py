"""When a proxied registration cannot be created or updated: Conflict, 409 (4.3.6.3, 5.9.2.4).

Two kinds of conflict, both found without I/O once the caller has the data:

* with other registrations (:func:`registration_conflict`): "Once an exclusive
  Context Source Registration has been created, no further exclusive or
  redirect Context Source Registrations can be created for that same
  combination of Entity ID and Attributes" (4.3.6.3).  The rule is read both
  ways (an exclusive registration over data already redirected conflicts too),
  while redirect registrations may overlap each other: "operations are
  distributed to all registered Context Sources";
* with the broker's own entities (:func:`local_conflict`): a redirect
  registration matching an existing entity, or an exclusive one naming an
  attribute an existing entity has (5.9.2.4).  :func:`conflict_probes` are the
  entity queries that find those entities in the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ngsi_ld.errors import Conflict
from ngsi_ld.federation.model import EntityInfo, Mode, Registration, RegistrationInfo
from ngsi_ld.query import EntityQuery, TypeName, TypeOr


def _entities_overlap(a: EntityInfo, b: EntityInfo) -> bool:
    if a.id is not None and b.id is not None:
        return a.id == b.id  # an id names one entity, whatever types are written
    if not a.has_type(b.types):
        return False
    for one, other in ((a, b), (b, a)):
        if one.id is not None:
            return other.has_id(one.id)
    return True  # patterns or types only: they may select the same entity


def _infos_overlap(a: RegistrationInfo, b: RegistrationInfo) -> bool:
    names_a, names_b = a.attributes, b.attributes
    if names_a is not None and names_b is not None and names_a.isdisjoint(names_b):
        return False
    if a.entities is None or b.entities is None:
        return True
    return any(_entities_overlap(x, y) for x in a.entities for y in b.entities)


def registration_conflict(
    registration: Registration, others: Iterable[Registration]
) -> Conflict | None:
    """The Conflict an exclusive or redirect ``registration`` has with ``others``, if any.

    ``others`` are the tenant's other registrations (an update passes them
    without the registration itself).
    """
    mode = registration.mode
    if not mode.proxied:
        return None
    for other in others:
        if other.id == registration.id or not other.mode.proxied:
            continue
        if Mode.EXCLUSIVE not in (mode, other.mode):
            continue  # redirect registrations may overlap each other
        if any(_infos_overlap(a, b) for a in registration.information
               for b in other.information):
            return Conflict(f"registration {registration.id} ({mode.value}) overlaps the "
                            f"{other.mode.value} registration {other.id} for the same entity "
                            "and attributes (clause 4.3.6.3)")
    return None


def conflict_probes(registration: Registration) -> list[EntityQuery]:
    """The entity queries (names expanded) that find local entities the registration
    would conflict with; none for inclusive and auxiliary registrations."""
    if not registration.mode.proxied:
        return []
    probes = []
    for info in registration.information:
        attrs = None
        if registration.mode is Mode.EXCLUSIVE and info.attributes is not None:
            attrs = sorted(info.attributes)
        for entity in info.entities or ():
            leaves = tuple(TypeName(t) for t in entity.types)
            types = leaves[0] if len(leaves) == 1 else TypeOr(leaves)
            if entity.id is not None:
                probes.append(EntityQuery(ids=[entity.id], attrs=attrs))
            else:
                probes.append(EntityQuery(id_pattern=entity.id_pattern, type_expr=types,
                                          attrs=attrs))
        if info.entities is None and attrs is not None:
            probes.append(EntityQuery(attrs=attrs))
    return probes


def local_conflict(
    registration: Registration, entities: Iterable[Mapping[str, Any]]
) -> Conflict | None:
    """The Conflict ``registration`` has with local ``entities`` (internal form), if any.

    5.9.2.4: for redirect, "If an existing Entity already matches the Context
    Source Registration"; for exclusive, "If an Entity already exists for the
    supplied Entity ID (URI) and the existing Entity contains any of the
    Attributes defined in the registration".
    """
    if not registration.mode.proxied:
        return None
    for entity in entities:
        entity_id, types, attrs = entity["id"], entity.get("type") or [], entity.get("attrs", {})
        for info in registration.information:
            if not info.selects(entity_id, types):
                continue
            names = info.attributes
            if registration.mode is Mode.EXCLUSIVE:
                held = sorted(a for a in attrs if names is not None and a in names)
                if held:
                    return Conflict(f"entity {entity_id} already holds {', '.join(held)} "
                                    "locally: it cannot be registered exclusively (5.9.2.4)")
            elif names is None or not names.isdisjoint(attrs):
                return Conflict(f"entity {entity_id} already exists locally and matches the "
                                "redirect registration (5.9.2.4)")
    return None


__all__ = ["conflict_probes", "local_conflict", "registration_conflict"]
