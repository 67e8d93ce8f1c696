"""What a Context Source Registration Subscription is (5.11, 5.2.12 read for
registrations) and what one of its notifications holds: the validation of its
members, the registration queries it compiles to (5.11.7), the rules shared with
entity subscriptions, and the pending notification with its journal codec
(``subscriptions.pending``).  Pure: the running subscriptions are
``subscriptions.registrations``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation import (
    Registration,
    RegistrationQuery,
    parse_temporal_query,
    registration_from_record,
    registration_record,
)
from ngsi_ld.query import parse_geo_query, parse_q, parse_scope_q, parse_type_expr, resolve_names
from subscriptions import pending
from subscriptions.model import check_subscription, parse_members
from subscriptions.model import q_text as decoded_q

__all__ = ["CSOURCE_JOBS", "CsourceJob", "check_csource", "compile_queries",
           "parse_csource_members"]

#: members of an entity subscription that mean nothing for registrations
_ENTITY_ONLY = ("notificationTrigger", "datasetId", "lang", "join", "joinLevel")
_ENTITY_ONLY_NOTIFICATION = ("showChanges", "join", "joinLevel")
_TEMPORAL_MEMBERS = frozenset({"timerel", "timeAt", "endTimeAt", "timeproperty"})


def _temporal_q(value: Any) -> dict[str, Any]:
    # 5.2.12 temporalQ (a TemporalQuery, 5.2.21) of a registration subscription
    if not isinstance(value, dict):
        raise BadRequestData("temporalQ must be an object with timerel and timeAt")
    unknown = set(value) - _TEMPORAL_MEMBERS
    if unknown:
        raise BadRequestData(f"temporalQ has unknown members: {', '.join(sorted(unknown))}")
    if "timerel" not in value:
        raise BadRequestData("temporalQ needs timerel")
    parse_temporal_query(value.get("timerel"), value.get("timeAt"), value.get("endTimeAt"),
                         value.get("timeproperty"))
    return dict(value)


def parse_csource_members(raw: Any, expand: Callable[[str], str], now: datetime, *,
                          partial: bool) -> dict[str, Any]:
    """Validate the members of a registration subscription (``partial``: a fragment)."""
    if not isinstance(raw, dict):
        raise BadRequestData("a subscription must be a JSON object")
    for name in _ENTITY_ONLY:
        if name in raw:
            raise BadRequestData(f"{name} is not a member of context source registration "
                                 "subscriptions")
    notification = raw.get("notification")
    if isinstance(notification, dict):
        for name in _ENTITY_ONLY_NOTIFICATION:
            if name in notification:
                raise BadRequestData(f"notification.{name} is not a member of context source "
                                     "registration subscriptions")
    common = {k: v for k, v in raw.items() if k not in ("csf", "temporalQ", "@context")}
    members = parse_members(common, expand, now, partial=partial)
    if members.get("expiresAt") is not None:
        members["expiresAt"] = raw["expiresAt"]  # valid and future: shown as written
    for name in ("csf", "temporalQ"):
        if name not in raw:
            continue
        value = raw[name]
        if value is None and partial:
            members[name] = None
        elif name == "csf":
            if not isinstance(value, str) or not value:
                raise BadRequestData("csf must be a non-empty query string")
            parse_q(value)
            members[name] = value
        else:
            members[name] = _temporal_q(value)
    return members


def compile_queries(doc: dict[str, Any],
                    expand: Callable[[str], str]) -> tuple[RegistrationQuery, ...]:
    """One RegistrationQuery per entity selector of ``doc`` (its names expanded already;
    ``q`` and ``csf`` are resolved with ``expand``, the subscription's @context)."""
    attrs = frozenset(doc["watchedAttributes"]) if doc.get("watchedAttributes") else None
    q = None if "q" not in doc else resolve_names(parse_q(decoded_q(doc["q"])), expand)
    csf = None if "csf" not in doc else resolve_names(parse_q(doc["csf"]), expand)
    scope_q = None if "scopeQ" not in doc else parse_scope_q(doc["scopeQ"])
    geo = doc.get("geoQ")
    geo_q = None if geo is None else parse_geo_query(
        geo["georel"], geo["geometry"], geo["coordinates"], geo["geoproperty"])
    temporal_doc = doc.get("temporalQ")
    temporal = None if temporal_doc is None else parse_temporal_query(
        temporal_doc.get("timerel"), temporal_doc.get("timeAt"),
        temporal_doc.get("endTimeAt"), temporal_doc.get("timeproperty"))
    common = RegistrationQuery(attrs=attrs, q=q, csf=csf, scope_q=scope_q, geo_q=geo_q,
                               temporal=temporal)
    selectors = doc.get("entities")
    if not selectors:
        return (common,)
    return tuple(replace(common, ids=(selector["id"],) if "id" in selector else None,
                         id_pattern=selector.get("idPattern"),
                         type_expr=parse_type_expr(selector["type"]))
                 for selector in selectors)


@dataclass(slots=True)
class CsourceJob:
    """One notification: why, and the registrations it carries."""

    reason: str
    registrations: list[Registration]
    #: the records that keep it across a restart (``subscriptions.pending``)
    records: list[str] = field(default_factory=list, compare=False)


def _encode(job: CsourceJob) -> dict[str, Any]:
    # the registrations as they were when the change was answered, in their stored form
    return {"reason": job.reason,
            "registrations": [registration_record(reg) for reg in job.registrations]}


def _decode(doc: dict[str, Any]) -> CsourceJob:
    return CsourceJob(str(doc["reason"]),
                      [registration_from_record(dict(r)) for r in doc["registrations"]])


#: how a pending ContextSourceNotification is journaled (``subscriptions.pending``)
CSOURCE_JOBS: pending.Codec[CsourceJob] = pending.Codec(_encode, _decode)


def check_csource(doc: dict[str, Any]) -> None:
    # 5.2.12 rules shared with entity subscriptions; a registration subscription may
    # select by watchedAttributes alone, or by csf, q or geoQ alone (5.11.2)
    probe = dict(doc)
    if not probe.get("entities") and not probe.get("watchedAttributes"):
        if not any(name in probe for name in ("csf", "q", "geoQ", "scopeQ", "temporalQ")):
            raise BadRequestData("a subscription needs entities, watchedAttributes, q, csf, "
                                 "geoQ, scopeQ or temporalQ")
        probe["watchedAttributes"] = ["-"]  # only to pass the shared rule
        if "timeInterval" in probe:
            probe["entities"] = [{"type": "-"}]
            del probe["watchedAttributes"]
    check_subscription(probe)
