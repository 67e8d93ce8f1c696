"""What a registration offers, tested against what a request asks (clauses 4.11, 5.10.2.4, 5.12).

The pieces both the discovery of registrations
(:mod:`ngsi_ld.federation.discovery`) and the planning of distributed
operations (:mod:`ngsi_ld.federation.planning`) use:

* :class:`TemporalQuery` (4.11) and its test against ``observationInterval``
  (``timeproperty`` observedAt, the default) or ``managementInterval``
  (createdAt, modifiedAt, deletedAt);
* :func:`source_properties`: a registration seen as an entity whose attributes
  are its Context Source Properties, so that ``q`` and ``csf`` (4.9) evaluate on
  it with the entity evaluator;
* :func:`entity_info_matches`: one EntityInfo against the ids, idPattern and
  type selector of a request;
* :func:`registration_geometry`: the registration member a geo-query's
  ``geoproperty`` names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation.model import EntityInfo, Registration, TimeInterval
from ngsi_ld.query import QExpr, TypeExpr, match_q, matches_types, regexes
from ngsi_ld.timeutil import parse_datetime

#: the IRI namespace of the core @context: core member names expand under it
CORE = "https://uri.etsi.org/ngsi-ld/"
TIMERELS = ("before", "after", "between")
#: 5.2.9: which interval of a registration a temporal query on this property concerns
INTERVAL_OF = {"observedAt": "observation", "createdAt": "management",
               "modifiedAt": "management", "deletedAt": "management"}
#: the members of Table 5.2.9-1 a q or csf may name, as Context Source Properties
_SCALAR_MEMBERS = ("endpoint", "mode", "registrationName", "description",
                   "contextSourceAlias", "tenant", "refreshRate", "expiresAt")
_GEO_MEMBERS = ("location", "observationSpace", "operationSpace")


# 4.11 Temporal query language
@dataclass(frozen=True)
class TemporalQuery:
    """``timerel`` with ``timeAt`` (and ``endTimeAt`` for between) on ``timeproperty``."""

    timerel: str
    time_at: datetime
    end_time_at: datetime | None = None
    timeproperty: str = "observedAt"

    def window(self) -> tuple[datetime | None, datetime | None]:
        """The instants the query selects, as [start, end) (None: unbounded)."""
        if self.timerel == "before":
            return None, self.time_at
        if self.timerel == "after":
            return self.time_at, None
        return self.time_at, self.end_time_at

    def interval(self, registration: Registration) -> TimeInterval | None:
        """The registration interval this query is matched against."""
        if INTERVAL_OF[self.timeproperty] == "observation":
            return registration.observation_interval
        return registration.management_interval

    def matches(self, registration: Registration) -> bool:
        """True if the registration's interval overlaps the query (5.10.2.4)."""
        interval = self.interval(registration)
        return interval is not None and interval.overlaps(*self.window())


def parse_temporal_query(
    timerel: str | None,
    time_at: str | None,
    end_time_at: str | None = None,
    timeproperty: str | None = None,
) -> TemporalQuery | None:
    """Validate the temporal query parameters (4.11); None when there is no temporal query."""
    if timerel is None:
        for name, value in (("timeAt", time_at), ("endTimeAt", end_time_at),
                            ("timeproperty", timeproperty)):
            if value is not None:
                raise BadRequestData(f"{name} needs timerel (a temporal query, 4.11)")
        return None
    if timerel not in TIMERELS:
        raise BadRequestData(f"timerel must be one of {', '.join(TIMERELS)}, not {timerel!r}")
    if time_at is None:
        raise BadRequestData("a temporal query needs timeAt")
    at = parse_datetime(time_at, what="timeAt")
    end = None
    if timerel == "between":
        if end_time_at is None:
            raise BadRequestData("timerel=between needs endTimeAt")
        end = parse_datetime(end_time_at, what="endTimeAt")
        if end <= at:
            raise BadRequestData("endTimeAt must be after timeAt")
    elif end_time_at is not None:
        raise BadRequestData("endTimeAt only goes with timerel=between")
    prop = timeproperty or "observedAt"
    if prop not in INTERVAL_OF:
        raise BadRequestData(f"timeproperty must be one of {', '.join(INTERVAL_OF)} for "
                             f"context source registrations, not {prop!r}")
    return TemporalQuery(timerel, at, end, prop)


def _instance(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and isinstance(value.get("type"), str) and (
            "value" in value or "object" in value or "languageMap" in value
            or "vocab" in value or "json" in value):
        return value  # already an NGSI-LD attribute (5724_01: sourceType)
    return {"type": "Property", "value": value}


def source_properties(registration: Registration) -> dict[str, Any]:
    """The registration as an entity of its Context Source Properties (for q and csf).

    Its additional members by their expanded names, and the scalar members of
    Table 5.2.9-1 (``endpoint``, ``mode``, ``tenant``...) by their core IRIs, so a
    ``csf=endpoint=="http://..."`` (51024_01) finds them.
    """
    attrs: dict[str, list[dict[str, Any]]] = {
        name: [_instance(value)] for name, value in registration.properties.items()
    }
    values = {
        "endpoint": registration.endpoint, "mode": registration.mode.value,
        "registrationName": registration.registration_name,
        "description": registration.description,
        "contextSourceAlias": registration.context_source_alias,
        "tenant": registration.tenant, "refreshRate": registration.refresh_rate,
        "expiresAt": registration.expires_at,
    }
    for member in _SCALAR_MEMBERS:
        if values[member] is not None:
            attrs.setdefault(CORE + member, [{"type": "Property", "value": values[member]}])
    if registration.operations is not None:
        attrs[CORE + "operations"] = [{"type": "Property",
                                       "value": list(registration.operations)}]
    return {"id": registration.id, "type": [], "attrs": attrs}


def filter_matches(expr: QExpr, registration: Registration) -> bool:
    """True if a q or csf (names expanded) holds on the registration's properties."""
    return match_q(expr, source_properties(registration))


def registration_geometry(registration: Registration, geoproperty: str) -> Mapping[str, Any] | None:
    """The geometry a geo-query on ``geoproperty`` (a term or its core IRI) tests."""
    name = geoproperty[len(CORE):] if geoproperty.startswith(CORE) else geoproperty
    return registration.geometry(name) if name in _GEO_MEMBERS else None


# 5.12 (and 5.10.2.4): an EntityInfo against a request's entity selectors
def entity_info_matches(
    info: EntityInfo,
    ids: Iterable[str] | None,
    id_pattern: str | None,
    type_expr: TypeExpr | None,
) -> bool:
    """True if entities the request selects may be ones this EntityInfo registers.

    Ids meet the info's id or idPattern; a request idPattern meets the info's
    id; two patterns or a type-only info may always overlap (matching can only
    err on the side of asking a source that then answers nothing).
    """
    if type_expr is not None and not matches_types(type_expr, info.types):
        return False
    if ids is not None and not any(info.has_id(entity_id) for entity_id in ids):
        return False
    if id_pattern is not None and info.id is not None:
        return regexes.search(id_pattern, info.id)
    return True


__all__ = [
    "CORE",
    "TemporalQuery",
    "entity_info_matches",
    "filter_matches",
    "parse_temporal_query",
    "registration_geometry",
    "source_properties",
]
