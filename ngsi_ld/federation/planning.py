"""Which registrations a request concerns, and what each source is asked (4.3.6, 5.12).

A request is described by a :class:`Selection` (what it selects, names
expanded).  :func:`candidates` applies the conditions every distributed
operation shares; :func:`plan_reads` and :func:`plan_write` then decide, per
mode (4.3.6.2, 4.3.6.3):

======================  ================================  ===============================
mode                    reads                             writes
======================  ================================  ===============================
inclusive               asked, merged with local data     forwarded if supported, and
                                                          done locally too
auxiliary               asked, fills gaps only            never (reads only, 4.3.6.2)
exclusive (attributes   asked for its attributes; local   its attributes forwarded (or
of entities by id)      copies of them are ignored        Conflict if unsupported), never
                                                          written locally
redirect                asked; local copies ignored       forwarded to every matching
                                                          redirect source (or Conflict)
======================  ================================  ===============================

Each source is asked only what its registration covers (4.3.6.1: "all
constraints specified in the registration shall be respected"): the entity ids
it names, its entity types when the request named none, the intersection of
the requested attributes with its ``propertyNames``/``relationshipNames``,
and only through an operation it supports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ngsi_ld.federation.merge import LOCAL
from ngsi_ld.federation.model import EntityInfo, Mode, Registration, RegistrationInfo
from ngsi_ld.federation.selection import (
    TemporalQuery,
    entity_info_matches,
    filter_matches,
    registration_geometry,
)
from ngsi_ld.query import (
    EntityQuery,
    GeoQuery,
    QExpr,
    ScopeExpr,
    TypeExpr,
    TypeName,
    TypeOr,
    matches_scope,
    matches_types,
    regexes,
)
from ngsi_ld.query.geo import entity_shape, geometry_distance_m

#: the operations a read may take, in the order they are preferred (Table 4.20-1)
RETRIEVE = ("retrieveEntity", "queryEntity", "queryBatch")
QUERY = ("queryEntity", "queryBatch")


@dataclass(frozen=True)
class Selection:
    """What a request selects, every name expanded; None is "not restricted"."""

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    type_expr: TypeExpr | None = None
    attrs: frozenset[str] | None = None
    geo_q: GeoQuery | None = None
    scope_q: ScopeExpr | None = None
    csf: QExpr | None = None
    dataset_ids: tuple[str, ...] | None = None
    temporal: TemporalQuery | None = None
    #: a temporal read (5.7.3, 5.7.4): registrations with an interval are consulted, and
    #: one without any interval may hold history too
    history: bool = False

    @classmethod
    def of_query(cls, query: EntityQuery, *, csf: QExpr | None = None,
                 temporal: TemporalQuery | None = None) -> Selection:
        """The selection of a (resolved) entity query."""
        return cls(
            ids=None if query.ids is None else tuple(query.ids),
            id_pattern=query.id_pattern,
            type_expr=query.type_expr,
            attrs=None if query.attrs is None else frozenset(query.attrs),
            geo_q=query.geo_q,
            scope_q=query.scope_q,
            csf=csf,
            dataset_ids=None if query.dataset_ids is None else tuple(query.dataset_ids),
            temporal=temporal,
        )


@dataclass(frozen=True)
class Candidate:
    """A registration the request concerns, and those of its informations it concerns."""

    registration: Registration
    infos: tuple[RegistrationInfo, ...]


def _may_hold(registration: Registration, query: GeoQuery) -> bool:
    """False only if no entity within the registration's geometry can satisfy the query."""
    geometry = registration_geometry(registration, query.geoproperty)
    if geometry is None:
        return True  # a source without a location may hold entities anywhere
    shape = entity_shape(geometry)
    if shape is None or query.georel == "disjoint" or query.min_distance is not None:
        return True
    if query.georel == "near":
        assert query.max_distance is not None
        return geometry_distance_m(query.shape, shape) <= query.max_distance
    return bool(shape.intersects(query.shape))


def _info_concerned(info: RegistrationInfo, selection: Selection) -> bool:
    if selection.attrs is not None:
        names = info.attributes
        if names is not None and names.isdisjoint(selection.attrs):
            return False
    if info.entities is None:
        return True
    return any(entity_info_matches(e, selection.ids, selection.id_pattern, selection.type_expr)
               for e in info.entities)


# 5.12 Context Source Registration matching, and Table 6.3.18-2 (Via)
def candidates(
    registrations: Iterable[Registration],
    selection: Selection,
    *,
    now: datetime,
    visited: Iterable[str] = (),
) -> list[Candidate]:
    """The registrations a request concerns, in the order given.

    Left out: expired registrations; those whose ``contextSourceAlias`` the
    request already passed through (``visited``, from its ``Via``); temporal
    registrations for a latest-state request, and for a temporal one those whose
    interval misses it; those a ``csf`` rejects; those whose ``scope`` or
    geometry rules the request out; those registering other datasetIds; and
    those none of whose informations meets the entity and attribute selectors.
    """
    seen = frozenset(visited)
    out = []
    for registration in registrations:
        if registration.expired(now) or registration.context_source_alias in seen:
            continue
        if selection.temporal is None:
            if registration.temporal and not selection.history:
                continue
        # 5.12: an interval that misses the query rules the registration out; for a
        # temporal read, a registration without interval is not restricted in time
        elif ((registration.temporal or not selection.history)
              and not selection.temporal.matches(registration)):
            continue
        if selection.csf is not None and not filter_matches(selection.csf, registration):
            continue
        if (selection.scope_q is not None and registration.scope is not None
                and not matches_scope(selection.scope_q, registration.scopes)):
            continue
        if selection.geo_q is not None and not _may_hold(registration, selection.geo_q):
            continue
        if (selection.dataset_ids is not None and registration.dataset_ids is not None
                and set(selection.dataset_ids).isdisjoint(registration.dataset_ids)):
            continue
        infos = tuple(i for i in registration.information if _info_concerned(i, selection))
        if infos:
            out.append(Candidate(registration, infos))
    return out


# -- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRequest:
    """One request to one source: the operation and what it selects (names expanded).

    ``type_expr`` is the request's type selector, or the registration's entity
    types when the request named none (a source answers no query without one);
    ``attrs`` None asks for every attribute.
    """

    registration: Registration
    operation: str
    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    type_expr: TypeExpr | None = None
    attrs: tuple[str, ...] | None = None

    @property
    def auxiliary(self) -> bool:
        """Its answer only fills gaps (4.3.6.2)."""
        return self.registration.mode is Mode.AUXILIARY

    @property
    def local_only(self) -> bool:
        """4.3.6.4: the request carries ``local=true`` so the source does not cascade."""
        return self.registration.acts_locally


@dataclass(frozen=True)
class Claim:
    """Local data a proxied registration holds instead of the broker (4.3.6.3)."""

    registration_id: str
    info: RegistrationInfo

    def hides(self, entity_id: str, types: Iterable[str]) -> bool:
        """True if the claim covers this entity (its attributes aside)."""
        return self.info.selects(entity_id, types)


@dataclass(frozen=True)
class ReadPlan:
    """The sources to ask and the local data to leave out of the answer."""

    requests: tuple[SourceRequest, ...] = ()
    claims: tuple[Claim, ...] = field(default=())

    def visible(self, entity: dict[str, Any], source: str = LOCAL) -> dict[str, Any] | None:
        """The entity (internal form) as ``source`` may contribute it to the answer.

        A proxied registration's claim keeps everyone but its claimants (the
        broker's own data, ``source`` LOCAL, included) from contributing the
        attributes it covers for the entities it covers.  None when nothing of
        the entity is left.  The entity is not changed.
        """
        claims = [c for c in self.claims if c.hides(entity["id"], entity.get("type") or [])]
        if not claims:
            return entity
        attrs = entity.get("attrs") or {}
        kept = {name: value for name, value in attrs.items()
                if not _claimed_from(name, source, claims)}
        owners = {c.registration_id for c in claims if c.info.attributes is None}
        if owners and source not in owners and not kept:
            return None
        if len(kept) == len(attrs):
            return entity
        return {**entity, "attrs": kept}


def _claimed_from(name: str, source: str, claims: Sequence[Claim]) -> bool:
    """True if claims cover the attribute and ``source`` is none of their claimants."""
    covering = [c for c in claims if c.info.covers(name)]
    return bool(covering) and all(c.registration_id != source for c in covering)


def _types_of(entities: Sequence[EntityInfo]) -> TypeExpr | None:
    """The selector of the entity types the informations register (None: no types)."""
    names = dict.fromkeys(t for entity in entities for t in entity.types)
    if not names:
        return None
    leaves = tuple(TypeName(name) for name in names)
    return leaves[0] if len(leaves) == 1 else TypeOr(leaves)


def _request_for(candidate: Candidate, info: RegistrationInfo, selection: Selection,
                 operation: str) -> SourceRequest | None:
    entities = info.entities
    typed = [e for e in entities or ()
             if selection.type_expr is None or matches_types(selection.type_expr, e.types)]
    ids = selection.ids
    pattern = selection.id_pattern
    if ids is not None and entities is not None:
        ids = tuple(i for i in ids if any(e.has_id(i) for e in typed))
        if not ids:
            return None
    elif ids is None and entities is not None and all(e.id is not None for e in typed):
        # the source registered these entities by id: ask for them, not for every entity
        ids = tuple(dict.fromkeys(
            e.id for e in typed
            if e.id is not None and (pattern is None or regexes.search(pattern, e.id))))
        if not ids:
            return None
        pattern = None
    elif pattern is None and typed and all(e.id is None and e.id_pattern for e in typed):
        patterns = list(dict.fromkeys(e.id_pattern for e in typed if e.id_pattern))
        pattern = patterns[0] if len(patterns) == 1 else "|".join(f"(?:{p})" for p in patterns)
    attrs: tuple[str, ...] | None = None
    registered = info.attributes
    if selection.attrs is None:
        attrs = None if registered is None else tuple(sorted(registered))
    else:
        wanted = selection.attrs if registered is None else selection.attrs & registered
        if not wanted:
            return None
        attrs = tuple(sorted(wanted))
    type_expr = selection.type_expr or _types_of(typed)
    return SourceRequest(candidate.registration, operation, ids, pattern, type_expr, attrs)


def plan_reads(
    registrations: Iterable[Registration],
    selection: Selection,
    operations: Sequence[str],
    *,
    now: datetime,
    visited: Iterable[str] = (),
) -> ReadPlan:
    """Plan a read (retrieve, query, discovery...) for ``selection``.

    ``operations`` are the ones able to answer it, preferred first (``RETRIEVE``
    for Retrieve Entity, ``QUERY`` for Query Entities, ``("purgeEntity",)``...);
    a registration supporting none of them is asked nothing.  The claims of
    proxied registrations hide the data they hold from every other party,
    whatever the request asks or filters the sources by (``csf``, a geo-query).
    """
    registrations = list(registrations)
    requests: list[SourceRequest] = []
    for candidate in candidates(registrations, selection, now=now, visited=visited):
        registration = candidate.registration
        operation = next((op for op in operations if registration.supports(op)), None)
        if operation is None:
            continue  # 4.3.6.1: never send what the source said it does not take
        for info in candidate.infos:
            request = _request_for(candidate, info, selection, operation)
            if request is not None and request not in requests:
                requests.append(request)
    return ReadPlan(tuple(requests), _claims(registrations, selection, now))


def _claims(registrations: Iterable[Registration], selection: Selection,
            now: datetime) -> tuple[Claim, ...]:
    # whatever the request asks or filters sources by, data a proxied registration
    # holds is not taken from anyone else (4.3.6.3)
    entities_only = Selection(ids=selection.ids, id_pattern=selection.id_pattern,
                              type_expr=selection.type_expr, temporal=selection.temporal,
                              history=selection.history)
    return tuple(
        Claim(candidate.registration.id, info)
        for candidate in candidates(registrations, entities_only, now=now)
        if candidate.registration.mode.proxied
        for info in candidate.infos
    )


def plan_retrieve(
    entity_id: str,
    registrations: Iterable[Registration],
    selection: Selection = Selection(),
    *,
    now: datetime,
    visited: Iterable[str] = (),
) -> ReadPlan:
    """Plan Retrieve Entity (5.7.1): ``selection`` holds its ``type`` and ``attrs``."""
    return plan_reads(registrations, replace(selection, ids=(entity_id,)), RETRIEVE,
                      now=now, visited=visited)


__all__ = [
    "QUERY",
    "RETRIEVE",
    "Candidate",
    "Claim",
    "ReadPlan",
    "Selection",
    "SourceRequest",
    "candidates",
    "plan_reads",
    "plan_retrieve",
]
