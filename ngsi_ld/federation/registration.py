"""Validation of Context Source Registration payloads (clauses 5.2.9, 5.9.2 and 4.3.6.3).

Pure: a client's JSON object in, a :class:`~ngsi_ld.federation.model.Registration`
out, every name passed through ``expand`` (typically
``ActiveContext.expand_term``).  The members of Table 5.2.9-1 are checked one
by one (:func:`parse_members`, shared with the update of 5.9.3); the rules
between members afterwards (:func:`check_registration`).  Any other member is
an additional Context Source Property, kept with its name expanded.  The
read-only members (``status``, ``timesSent``..., ``createdAt``) a client may
copy from a retrieval are ignored.  Every problem is BadRequestData, so a
client sees a 400 naming the member.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ngsi_ld.attributes import check_name
from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation import members as m
from ngsi_ld.federation.model import Mode, Registration
from ngsi_ld.federation.operations import is_operation, writes
from ngsi_ld.identifiers import is_iri
from ngsi_ld.timeutil import format_datetime, is_utc_datetime, parse_datetime

Expand = Callable[[str], str]

REGISTRATION_TYPE = "ContextSourceRegistration"
#: Table 5.2.9-2 and 5.2.2: members the broker keeps; a client sending them back is ignored
READ_ONLY = frozenset({"status", "timesSent", "timesFailed", "lastSuccess", "lastFailure",
                       "createdAt", "modifiedAt", "deletedAt"})
#: the mandatory members a fragment cannot remove (5.9.3.4)
MANDATORY = frozenset({"id", "type", "information", "endpoint"})
#: member name -> field of Registration, for the members Table 5.2.9-1 defines
FIELDS = {
    "id": "id", "type": "type", "registrationName": "registration_name",
    "description": "description", "information": "information", "mode": "mode",
    "operations": "operations", "endpoint": "endpoint",
    "contextSourceAlias": "context_source_alias", "tenant": "tenant", "scope": "scope",
    "location": "location", "observationSpace": "observation_space",
    "operationSpace": "operation_space", "observationInterval": "observation_interval",
    "managementInterval": "management_interval", "expiresAt": "expires_at",
    "refreshRate": "refresh_rate", "management": "management", "localOnly": "local_only",
    "contextSourceInfo": "context_source_info", "datasetId": "dataset_ids",
}
_ENDPOINT_SCHEMES = ("http", "https")
# 6.3.14: a Tenant travels as an HTTP header value
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def _endpoint(value: Any) -> str:
    # 5.2.9: "Endpoint expressed as dereferenceable URI through which the Context
    # Source exposes its NGSI-LD interface": an absolute http(s) URL with a host
    text = m.text(value, "endpoint")
    parts = urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in _ENDPOINT_SCHEMES or not parts.hostname or not port_ok:
        raise BadRequestData(f"endpoint must be an absolute http(s) URL, not {text!r}")
    if parts.query or parts.fragment:
        raise BadRequestData(f"endpoint {text!r} cannot have a query or a fragment: the "
                             "broker appends the NGSI-LD paths to it")
    return text


def _expires_at(value: Any, now: datetime | None) -> str:
    # 4.6.3 DateTime, and 5.9.2.4: "If expiresAt is a date and time in the past,
    # an error of type BadRequestData shall be raised".  Kept as written.
    if not is_utc_datetime(value):
        raise BadRequestData(f"expiresAt must be a DateTime (YYYY-MM-DDThh:mm:ssZ), "
                             f"not {value!r}")
    if now is not None and parse_datetime(value) <= now:
        raise BadRequestData(f"expiresAt {value} is in the past")
    return str(value)


def _operations(value: Any) -> tuple[str, ...]:
    # 4.20: operation names (Table 4.20-1) and groups (Table 4.20-2)
    if not isinstance(value, list) or not value:
        raise BadRequestData("operations must be a non-empty array of operation names")
    for name in value:
        if not is_operation(name):
            raise BadRequestData(f"operations: {name!r} is not an operation or operation "
                                 "group of clause 4.20")
    return tuple(value)


def _tenant(value: Any) -> str:
    text = m.text(value, "tenant")
    if not _HEADER_VALUE.fullmatch(text):
        raise BadRequestData(f"tenant {text!r} cannot travel as an NGSILD-Tenant header")
    return text


def _dataset_ids(value: Any) -> tuple[str, ...]:
    if (not isinstance(value, list) or not value
            or not all(item == "@none" or is_iri(item) for item in value)):
        raise BadRequestData("datasetId must be a non-empty array of URIs or '@none'")
    return tuple(value)


def _member(name: str, value: Any, expand: Expand, now: datetime | None) -> Any:
    if name == "id":
        if not is_iri(value):
            raise BadRequestData(f"registration id must be a URI, not {value!r}")
        return value
    if name == "type":
        if value != REGISTRATION_TYPE:
            raise BadRequestData(f"type must be {REGISTRATION_TYPE!r}, not {value!r}")
        return value
    if name in ("registrationName", "description", "contextSourceAlias", "refreshRate"):
        return m.text(value, name)
    if name == "information":
        return m.information(value, expand)
    if name == "mode":
        if value not in tuple(Mode):
            raise BadRequestData(f"mode must be one of {', '.join(Mode)}, not {value!r}")
        return Mode(value)
    if name == "operations":
        return _operations(value)
    if name == "endpoint":
        return _endpoint(value)
    if name == "tenant":
        return _tenant(value)
    if name == "scope":
        return m.scope(value)
    if name in ("location", "observationSpace", "operationSpace"):
        return m.geometry(value, name)
    if name in ("observationInterval", "managementInterval"):
        return m.interval(value, name)
    if name == "expiresAt":
        return _expires_at(value, now)
    if name == "management":
        return m.management(value)
    if name == "localOnly":
        return m.boolean(value, name)
    if name == "contextSourceInfo":
        return m.context_source_info(value)
    assert name == "datasetId"
    return _dataset_ids(value)


def parse_members(
    raw: Any, expand: Expand, now: datetime | None, *, partial: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate each member of a registration (``partial``: an update fragment).

    Returns the Table 5.2.9-1 members as :class:`Registration` field values and
    the additional Context Source Properties by expanded name.  In a fragment a
    ``null`` removes the member (its value is then None); ``null`` on a
    mandatory member, or anywhere in a new registration, is BadRequestData.
    ``now`` None skips the expiresAt-in-the-past check (stored records).
    """
    if not isinstance(raw, dict):
        raise BadRequestData("a context source registration must be a JSON object")
    fields: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for name, value in raw.items():
        if name in READ_ONLY or name == "@context":
            continue  # the HTTP layer resolves a body @context before this
        if value is None:
            if not partial or name in MANDATORY:
                raise BadRequestData(f"{name} cannot be null"
                                     + (" (it is mandatory)" if name in MANDATORY else ""))
            if name in FIELDS:
                fields[FIELDS[name]] = None
            else:
                properties[expand(check_name(name, what="context source property"))] = None
            continue
        if name in FIELDS:
            fields[FIELDS[name]] = _member(name, value, expand, now)
        else:
            # 5.2.9: any other member is a Context Source Property (csf and q query them)
            properties[expand(check_name(name, what="context source property"))] = value
    return fields, properties


# 5.9.2.4, 4.3.6.2 and 4.3.6.3: rules between members
def check_registration(registration: Registration) -> None:
    """Cross-member rules of a complete registration; BadRequestData names the conflict."""
    mode = registration.mode
    if mode is Mode.AUXILIARY and registration.operations is not None:
        # 4.3.6.2: "Auxiliary distributed operations are limited to context
        # information consumption operations"
        wrong = writes(registration.operations)
        if wrong:
            raise BadRequestData(f"an auxiliary registration only serves reads; it cannot "
                                 f"list {', '.join(wrong)}")
    if mode is Mode.EXCLUSIVE:
        # 4.3.6.3: "An exclusive registration shall always relate to specific
        # Attributes found on a single Entity ... an id pattern or Entity type
        # defining a group of entities is not supported for exclusive registrations"
        for index, info in enumerate(registration.information):
            where = f"information[{index}]"
            if not info.entities or any(entity.id is None for entity in info.entities):
                raise BadRequestData(f"{where}: an exclusive registration names each entity "
                                     "by id (no idPattern, no type alone)")
            if info.attributes is None:
                raise BadRequestData(f"{where}: an exclusive registration names its "
                                     "attributes (propertyNames or relationshipNames)")


def parse_registration(
    raw: Any, expand: Expand, now: datetime | None, *, default_id: str | None = None
) -> Registration:
    """A new registration from a client's payload (5.9.2 Register Context Source).

    ``default_id`` is the id the broker gives a registration sent without one
    (5.9.2.4); without it an id is required.  ``now`` rejects a past expiresAt
    and becomes ``createdAt`` and ``modifiedAt``.
    """
    fields, properties = parse_members(raw, expand, now, partial=False)
    if "id" not in fields:
        if default_id is None:
            raise BadRequestData("a context source registration needs an id")
        fields["id"] = default_id
    for name in ("type", "information", "endpoint"):
        if FIELDS[name] not in fields:
            raise BadRequestData(f"a context source registration needs {name}")
    del fields["type"]
    if now is not None:
        fields["created_at"] = fields["modified_at"] = format_datetime(now)
    registration = Registration(properties=properties, **fields)
    check_registration(registration)
    return registration


__all__ = [
    "MANDATORY",
    "READ_ONLY",
    "REGISTRATION_TYPE",
    "check_registration",
    "parse_members",
    "parse_registration",
]
