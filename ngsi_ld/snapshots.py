"""Snapshots (ETSI GS CIM 009 v1.9.1, clause 5.16 and the Snapshot data type 5.2.41).

A Snapshot freezes what its ``snapshotQueries`` (Query objects, 5.2.23) select at
the moment it is created; queries sent with the ``NGSILD-Snapshot`` header (6.3.22)
are answered from that frozen copy.  This module holds the pure part: the
Snapshot document a client sends and gets back, what a fragment may change
(5.16.4), and the q of a purge (5.16.7).  The broker keeps the document as a
record and the frozen entities in a tenant of their own (``broker/routes/snapshots.py``).

Members (5.2.41): ``id``, ``type`` ("Snapshot"), ``snapshotQueries``,
``snapshotPriority`` (an integer, 5 unless given; the lower the sooner purged),
``snapshotStatus`` ("preparing", then "success", "partialSuccess" or "failed"),
``snapshotQueriesDetails`` (one entry per query: ``resultStatus`` and the number of
entities it selected), ``createdAt``, ``lastUsedAt``, ``expiresAt`` (optional).
"""

from __future__ import annotations

from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.identifiers import is_iri
from ngsi_ld.query import EntityQuery, matches, parse_q, resolve_names
from ngsi_ld.timeutil import is_utc_datetime

__all__ = [
    "DEFAULT_PRIORITY",
    "HEADER",
    "MEMBERS",
    "RECORDS",
    "STORE_TENANT",
    "apply_fragment",
    "new_snapshot",
    "purge_query",
    "selected_by",
]

DEFAULT_PRIORITY = 5
#: 6.3.22: the request header naming the Snapshot a read is answered from
HEADER = "NGSILD-Snapshot"
#: the record collection of Snapshots, per tenant
RECORDS = "snapshots"
#: the member of the stored record naming the tenant that holds the frozen entities
#: (the broker's own: never shown to clients)
STORE_TENANT = "storeTenant"
#: what a client may set (at creation, or with a fragment: the ones marked True)
_WRITABLE = {"snapshotPriority": True, "expiresAt": True, "snapshotQueries": False}
#: what the broker keeps (read-only for clients)
_SYSTEM = ("snapshotStatus", "snapshotQueriesDetails", "createdAt", "lastUsedAt")
#: the members of the Snapshot data type, which a purge query may name (5.16.7.4)
MEMBERS = frozenset({"id", "type", *_WRITABLE, *_SYSTEM})


def _priority(value: Any) -> int:
    if value.__class__ is not int:
        raise BadRequestData("snapshotPriority must be an integer")
    return int(value)


def _expires(value: Any) -> str:
    if not is_utc_datetime(value):
        raise BadRequestData(f"expiresAt {value!r} is not a UTC date-time")
    return str(value)


def _queries(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise BadRequestData("snapshotQueries must be a non-empty array of Query objects")
    for query in value:
        if not isinstance(query, dict) or query.get("type") != "Query":
            raise BadRequestData('every snapshotQuery must be a Query (its type is "Query")')
        if "temporalQ" in query:
            # the frozen copy is of the current state: no temporal evolution in it
            raise BadRequestData("a snapshotQuery cannot have a temporalQ")
    return value


def new_snapshot(body: Any, snapshot_id: str, now: str) -> dict[str, Any]:
    """The Snapshot document of a creation request (5.16.1), status "preparing".

    BadRequestData for a body that is not a Snapshot, without snapshotQueries, or
    naming a member the client cannot set.
    """
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a Snapshot object")
    if body.get("type", "Snapshot") != "Snapshot":
        raise BadRequestData('a Snapshot has the type "Snapshot"')
    if "id" in body and not is_iri(body["id"]):
        raise BadRequestData(f"Snapshot id {body['id']!r} is not a URI")
    unknown = set(body) - {"id", "type", "@context", *_WRITABLE}
    if unknown:
        raise BadRequestData(f"a Snapshot cannot be created with {', '.join(sorted(unknown))}")
    snapshot: dict[str, Any] = {
        "id": body.get("id", snapshot_id),
        "type": "Snapshot",
        "snapshotQueries": _queries(body.get("snapshotQueries")),
        "snapshotPriority": _priority(body.get("snapshotPriority", DEFAULT_PRIORITY)),
        "snapshotStatus": "preparing",
        "createdAt": now,
        "lastUsedAt": now,
    }
    if "expiresAt" in body:
        snapshot["expiresAt"] = _expires(body["expiresAt"])
    return snapshot


def apply_fragment(snapshot: dict[str, Any], fragment: Any) -> dict[str, Any]:
    """5.16.4: ``snapshot`` with a Snapshot Fragment applied (5.5.8); only the priority
    and the expiry can change, anything else is BadRequestData."""
    if not isinstance(fragment, dict):
        raise BadRequestData("the body must be a Snapshot fragment (a JSON object)")
    out = dict(snapshot)
    for name, value in fragment.items():
        if name in ("@context", "type") and (name == "@context" or value == "Snapshot"):
            continue
        if name == "id" and value == snapshot["id"]:
            continue
        if not _WRITABLE.get(name, False):
            raise BadRequestData(f"{name} of a Snapshot cannot be updated")
        out[name] = _priority(value) if name == "snapshotPriority" else _expires(value)
    return out


def purge_query(text: str | None) -> EntityQuery:
    """The q of a purge (5.16.7.4): required, valid, and naming Snapshot members only."""
    if text is None or not text.strip():
        raise BadRequestData("purging Snapshots needs a q query over Snapshot members")

    def member(name: str) -> str:
        if name not in MEMBERS:
            raise BadRequestData(f"{name!r} is not a member of the Snapshot data type")
        return name

    return EntityQuery(q=resolve_names(parse_q(text), member))


def selected_by(query: EntityQuery, snapshot: dict[str, Any]) -> bool:
    """Whether a purge query selects ``snapshot`` (its members read as Properties)."""
    as_entity = {
        "id": snapshot["id"],
        "type": ["Snapshot"],
        "attrs": {
            name: [{"type": "Property", "value": value}]
            for name, value in snapshot.items()
            if name not in ("id", "type") and name in MEMBERS
        },
    }
    return matches(as_entity, query)
