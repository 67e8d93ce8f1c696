"""A registration as JSON: the client's view (5.10.1, 5.10.2) and the stored record.

:func:`render_registration` is what Retrieve and Query Context Source
Registrations answer: the members of Table 5.2.9-1 as the client wrote them,
names compacted through ``compact`` (typically ``ActiveContext.compact_iri``),
``mode`` and ``operations`` always shown (their defaults when absent), the
status members once a distributed operation has used the registration, and
``createdAt``/``modifiedAt`` only when asked for (``sysAttrs``, as for entities).

:func:`registration_record` and :func:`registration_from_record` are the
persistent form: the same document with full IRIs and every status member,
read back through the same validation (a damaged record is refused, not used).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ngsi_ld.federation.model import (
    DeliveryStatus,
    EntityInfo,
    Management,
    Registration,
    RegistrationInfo,
    TimeInterval,
)
from ngsi_ld.federation.operations import DEFAULT_OPERATIONS
from ngsi_ld.federation.registration import REGISTRATION_TYPE, check_registration, parse_members

Name = Callable[[str], str]


def _identity(name: str) -> str:
    return name


def _entity_info(info: EntityInfo, name: Name) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if info.id is not None:
        out["id"] = info.id
    if info.id_pattern is not None:
        out["idPattern"] = info.id_pattern
    types = [name(t) for t in info.types]
    out["type"] = types if info.type_list else types[0]
    return out


def _registration_info(info: RegistrationInfo, name: Name) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if info.entities is not None:
        out["entities"] = [_entity_info(e, name) for e in info.entities]
    if info.property_names is not None:
        out["propertyNames"] = [name(n) for n in info.property_names]
    if info.relationship_names is not None:
        out["relationshipNames"] = [name(n) for n in info.relationship_names]
    return out


def _interval(interval: TimeInterval) -> dict[str, str]:
    out = {"startAt": interval.start_at}
    if interval.end_at is not None:
        out["endAt"] = interval.end_at
    return out


def _management(management: Management) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if management.local_only is not None:
        out["localOnly"] = management.local_only
    if management.cache_duration is not None:
        out["cacheDuration"] = management.cache_duration
    if management.timeout is not None:
        out["timeout"] = management.timeout
    if management.cooldown is not None:
        out["cooldown"] = management.cooldown
    return out


def _key_values(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in pairs]


def _optional(render: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``render`` applied to a member that may be absent (None stays None)."""
    return lambda value: None if value is None else render(value)


def _status(delivery: DeliveryStatus, *, always: bool) -> dict[str, Any]:
    # Table 5.2.9-2: lastSuccess is "created on first successful operation"; the
    # members stay away until a distributed operation used the registration
    if delivery.status is None and not always:
        return {}
    out: dict[str, Any] = {}
    if delivery.status is not None:
        out["status"] = delivery.status
    out["timesSent"] = delivery.times_sent
    out["timesFailed"] = delivery.times_failed
    if delivery.last_success is not None:
        out["lastSuccess"] = delivery.last_success
    if delivery.last_failure is not None:
        out["lastFailure"] = delivery.last_failure
    return out


def _document(registration: Registration, name: Name, *, defaults: bool) -> dict[str, Any]:
    r = registration
    out: dict[str, Any] = {"id": r.id, "type": REGISTRATION_TYPE}
    optional: list[tuple[str, Any]] = [
        ("registrationName", r.registration_name),
        ("description", r.description),
    ]
    for key, value in optional:
        if value is not None:
            out[key] = value
    out["information"] = [_registration_info(info, name) for info in r.information]
    out["mode"] = r.mode.value
    if r.operations is not None or defaults:
        out["operations"] = list(r.operations or DEFAULT_OPERATIONS)
    out["endpoint"] = r.endpoint
    interval = _optional(_interval)
    rest: list[tuple[str, Any]] = [
        ("contextSourceAlias", r.context_source_alias),
        ("tenant", r.tenant),
        ("scope", list(r.scope) if isinstance(r.scope, tuple) else r.scope),
        ("location", r.location),
        ("observationSpace", r.observation_space),
        ("operationSpace", r.operation_space),
        ("observationInterval", interval(r.observation_interval)),
        ("managementInterval", interval(r.management_interval)),
        ("expiresAt", r.expires_at),
        ("refreshRate", r.refresh_rate),
        ("management", _optional(_management)(r.management)),
        ("localOnly", r.local_only),
        ("contextSourceInfo", _optional(_key_values)(r.context_source_info)),
        ("datasetId", _optional(list)(r.dataset_ids)),
    ]
    for key, value in rest:
        if value is not None:
            out[key] = value
    for prop, value in r.properties.items():
        out[name(prop)] = value
    return out


# 5.10.1 Retrieve / 5.10.2 Query Context Source Registrations: the client's view
def render_registration(
    registration: Registration, compact: Name, *, sys_attrs: bool = False
) -> dict[str, Any]:
    """The registration as a client retrieves it, names compacted."""
    out = _document(registration, compact, defaults=True)
    out.update(_status(registration.delivery, always=False))
    if sys_attrs:
        for key, stamp in (("createdAt", registration.created_at),
                           ("modifiedAt", registration.modified_at)):
            if stamp is not None:
                out[key] = stamp
    return out


def registration_record(registration: Registration) -> dict[str, Any]:
    """The persistent form: full IRIs, system timestamps and every status member.

    Unlike the retrieval view it leaves out an ``operations`` the client did not
    give, so the registration reads back exactly as it was.
    """
    out = _document(registration, _identity, defaults=False)
    out.update(_status(registration.delivery, always=True))
    if registration.created_at is not None:
        out["createdAt"] = registration.created_at
    if registration.modified_at is not None:
        out["modifiedAt"] = registration.modified_at
    return out


def registration_from_record(record: dict[str, Any]) -> Registration:
    """A registration read back from :func:`registration_record` (validated again)."""
    fields, properties = parse_members(record, _identity, None, partial=False)
    fields.pop("type", None)
    registration = Registration(properties=properties, **fields)
    check_registration(registration)
    delivery = DeliveryStatus(
        times_sent=int(record.get("timesSent", 0)),
        times_failed=int(record.get("timesFailed", 0)),
        last_success=record.get("lastSuccess"),
        last_failure=record.get("lastFailure"),
        status=record.get("status"),
    )
    return replace(registration, created_at=record.get("createdAt"),
                   modified_at=record.get("modifiedAt"), delivery=delivery)


__all__ = ["registration_from_record", "registration_record", "render_registration"]
