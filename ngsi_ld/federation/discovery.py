"""Query Context Source Registrations (clause 5.10.2): which registrations a query selects.

:func:`registration_query` reads the query parameters of ``GET
/csourceRegistrations`` (a plain mapping: ``id``, ``idPattern``, ``type``,
``attrs``, ``q``, ``csf``, ``scopeQ``, the geo-query and the temporal query),
validates them with the NGSI-LD query languages and resolves their names with
the request's @context.  :meth:`RegistrationQuery.matches` is the evaluator
(5.10.2.4):

* ``id``/``idPattern``/``type`` and ``attrs`` hold together on one
  RegistrationInfo: one of its EntityInfos meets the entity selectors (an info
  without ``entities`` meets any) and it registers one of the attributes (one
  without ``propertyNames``/``relationshipNames`` registers all);
* ``q`` and ``csf`` hold on the registration's Context Source Properties;
* ``scopeQ`` holds on its ``scope``; a geo-query on its ``location`` (or the
  member ``geoproperty`` names), a registration without it does not match;
* with a temporal query, the registration's ``observationInterval``
  (``timeproperty`` observedAt) or ``managementInterval`` overlaps it;
  without one, only registrations for latest information (no interval) match;
* an expired registration never matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation.model import Registration, RegistrationInfo
from ngsi_ld.federation.selection import (
    TemporalQuery,
    entity_info_matches,
    filter_matches,
    parse_temporal_query,
    registration_geometry,
)
from ngsi_ld.identifiers import is_iri
from ngsi_ld.params import Params
from ngsi_ld.query import (
    GeoQuery,
    QExpr,
    ScopeExpr,
    TypeExpr,
    compile_pattern,
    geo_matches,
    matches_scope,
    parse_geo_query,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    resolve_names,
)

Expand = Callable[[str], str]
_GEO = ("georel", "geometry", "coordinates")


@dataclass(frozen=True)
class RegistrationQuery:
    """The selectors of a query on registrations, names expanded; every one given holds."""

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    type_expr: TypeExpr | None = None
    attrs: frozenset[str] | None = None
    q: QExpr | None = None
    csf: QExpr | None = None
    scope_q: ScopeExpr | None = None
    geo_q: GeoQuery | None = None
    temporal: TemporalQuery | None = None

    @property
    def has_selector(self) -> bool:
        """5.10.2.4: a query must select something (a bare GET is BadRequestData, 037_02)."""
        return any(value is not None for value in (
            self.ids, self.id_pattern, self.type_expr, self.attrs, self.q, self.csf,
            self.scope_q, self.geo_q, self.temporal))

    def _info_matches(self, info: RegistrationInfo) -> bool:
        if self.attrs is not None:
            names = info.attributes
            if names is not None and names.isdisjoint(self.attrs):
                return False
        if info.entities is None:
            return True
        return any(entity_info_matches(e, self.ids, self.id_pattern, self.type_expr)
                   for e in info.entities)

    def relevant(self, registration: Registration) -> Registration:
        """The registration with only the RegistrationInfos the query selects.

        5.11.7 (047_03): a registration subscription's notification "should"
        carry the information relevant to the subscription, not all of it.
        """
        infos = tuple(i for i in registration.information if self._info_matches(i))
        return replace(registration, information=infos) if infos else registration

    def matches(self, registration: Registration, now: datetime) -> bool:
        """True if the query selects the registration at ``now``."""
        if registration.expired(now):
            return False
        if self.temporal is None:
            if registration.temporal:
                return False
        elif not self.temporal.matches(registration):
            return False
        if not any(self._info_matches(info) for info in registration.information):
            return False
        for expr in (self.q, self.csf):
            if expr is not None and not filter_matches(expr, registration):
                return False
        if self.scope_q is not None and not matches_scope(self.scope_q, registration.scopes):
            return False
        if self.geo_q is not None:
            geometry = registration_geometry(registration, self.geo_q.geoproperty)
            if geometry is None or not geo_matches(self.geo_q, geometry):
                return False
        return True


def _csv(value: str | None, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(item.strip() for item in value.split(","))
    if not all(items):
        raise BadRequestData(f"{what} must be a comma-separated list of non-empty items")
    return items


def registration_query(params: Params | Mapping[str, str], expand: Expand) -> RegistrationQuery:
    """Parse the parameters of a query on registrations; BadRequestData names what is wrong.

    ``expand`` resolves names with the request's @context.  A query without any
    selector is BadRequestData (5.10.2.4).
    """
    ids = _csv(params.get("id"), "id")
    if ids is not None:
        for entity_id in ids:
            if not is_iri(entity_id):
                raise BadRequestData(f"id {entity_id!r} is not a URI")
    id_pattern = params.get("idPattern")
    if id_pattern is not None:
        compile_pattern(id_pattern, "idPattern")
    type_text = params.get("type")
    type_expr = None if type_text is None else resolve_names(parse_type_expr(type_text), expand)
    attrs = _csv(params.get("attrs"), "attrs")
    q_text, csf_text, scope_text = params.get("q"), params.get("csf"), params.get("scopeQ")
    q = None if q_text is None else resolve_names(parse_q(q_text), expand)
    csf = None if csf_text is None else resolve_names(parse_q(csf_text), expand)
    geo_q = None
    given = [name for name in _GEO if params.get(name) is not None]
    if given:
        missing = [name for name in _GEO if params.get(name) is None]
        if missing:
            raise BadRequestData(f"a geo-query also needs {', '.join(missing)}")
        geo_q = resolve_names(parse_geo_query(
            params.get("georel") or "", params.get("geometry") or "",
            params.get("coordinates") or "",
            params.get("geoproperty") or "location"), expand)
    elif params.get("geoproperty") is not None:
        raise BadRequestData("geoproperty needs georel, geometry and coordinates")
    query = RegistrationQuery(
        ids=ids,
        id_pattern=id_pattern,
        type_expr=type_expr,
        attrs=None if attrs is None else frozenset(expand(name) for name in attrs),
        q=q,
        csf=csf,
        scope_q=None if scope_text is None else parse_scope_q(scope_text),
        geo_q=geo_q,
        temporal=parse_temporal_query(params.get("timerel"), params.get("timeAt"),
                                      params.get("endTimeAt"), params.get("timeproperty")),
    )
    if not query.has_selector:
        raise BadRequestData("a query on context source registrations needs type, attrs, id, "
                             "idPattern, q, csf, scopeQ, a geo-query or a temporal query")
    return query


Trigger = Literal["newlyMatching", "updated", "noLongerMatching"]


# 5.11.7 (and Table 5.3.2-1): why a registration subscription notifies
def trigger_reason(
    queries: Iterable[RegistrationQuery],
    before: Registration | None,
    after: Registration | None,
    now: datetime,
) -> Trigger | None:
    """The ``triggerReason`` of a change from ``before`` to ``after`` (None: created,
    deleted) for a subscription selecting what any of ``queries`` selects (one per
    entity selector); None when the subscription is not concerned."""
    chosen = list(queries)
    was = before is not None and any(q.matches(before, now) for q in chosen)
    is_now = after is not None and any(q.matches(after, now) for q in chosen)
    if is_now:
        return "updated" if was else "newlyMatching"
    return "noLongerMatching" if was else None


__all__ = ["RegistrationQuery", "Trigger", "registration_query", "trigger_reason"]
