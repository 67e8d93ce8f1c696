"""The temporal representation as input: POST /temporal/entities and its fragments.

Clause 5.6.11 (Create or Update Temporal Evolution of an Entity), 5.6.12 (Add
Attributes), 5.6.14 (Partial Update Attribute instance) and 5.2.20: the body is
an Entity whose every Attribute is an array of instances (4.5.7, 4.5.8), or the
simplified temporal representation (4.5.9: ``{"type": ..., "values": [[value,
time], ...]}``), which is read back into instances.

Rules beyond those of an ordinary Entity (:mod:`ngsi_ld.attributes` checks each
instance):

- An array holds any number of instances of one datasetId: they are points in
  time, not a multi-attribute.
- 5.5.4 names "the temporal evolution" as the exception where the NGSI-LD Null
  may stand as a value: an instance ``{"value": "urn:ngsi-ld:null", ...}`` records
  a deletion (4.5.7).  The Null as a first-level member (``"expiresAt":
  "urn:ngsi-ld:null"``) is still BadRequestData (ETSI 5611_01_02).
- ``observedAt`` is a DateTime as 4.6.3 writes it, UTC with ``Z`` (ETSI 5744_01_03).
- The Scope comes as the Entity member (a string or a list: one instance recorded
  at the time of the write) or as its temporal evolution, an array of Property
  instances whose value is a scope (4.5.6).
- ``instanceId``, ``createdAt``, ``modifiedAt`` and ``deletedAt`` are the broker's
  and ignored.

The result keeps the internal form (``attrs``: name -> instances), so the JSON-LD
engine expands it like any Entity before :func:`temporal_history` turns it into
records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ngsi_ld.attributes import check_name, parse_attribute
from ngsi_ld.entity import parse_scope, parse_types
from ngsi_ld.errors import BadRequestData
from ngsi_ld.identifiers import is_iri
from ngsi_ld.instances import DELETE, MAIN_MEMBER, is_delete
from ngsi_ld.temporal.history import scope_instance
from ngsi_ld.temporal.instants import to_micros
from ngsi_ld.temporal.model import EntityRecord, History, Instance, InstanceIds, from_internal
from ngsi_ld.timeutil import is_utc_datetime

__all__ = [
    "SIMPLIFIED_MEMBERS",
    "latest_state",
    "parse_instance_fragment",
    "parse_temporal_attributes",
    "parse_temporal_entity",
    "temporal_history",
]

TemporalBody = dict[str, Any]

#: 4.5.9: the member of the simplified temporal representation of each kind
SIMPLIFIED_MEMBERS: dict[str, str] = {
    "Property": "values",
    "GeoProperty": "values",
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "VocabProperty": "vocabs",
    "JsonProperty": "jsons",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
}
_KIND_OF_SIMPLIFIED = {
    "values": "Property", "objects": "Relationship", "languageMaps": "LanguageProperty",
    "vocabs": "VocabProperty", "jsons": "JsonProperty", "valueLists": "ListProperty",
    "objectLists": "ListRelationship",
}
# Entity members the broker owns: ignored on input.
_SYSTEM = frozenset({"createdAt", "modifiedAt", "deletedAt", "@context"})


def parse_temporal_entity(body: Any, *, require_type: bool = True) -> TemporalBody:
    """Validate a temporal Entity (5.6.11) into ``{"id", "type", "scope", "attrs"}``.

    ``type`` is required when the Entity is created (``require_type``); ``scope``,
    when present, is a list of Scope instances; ``attrs`` maps each Attribute name
    to its instances.  BadRequestData on anything invalid.
    """
    if not isinstance(body, dict):
        raise BadRequestData("A temporal entity must be a JSON object")
    entity_id = body.get("id", body.get("@id"))
    if entity_id is None or entity_id == "":
        raise BadRequestData("The temporal entity has no 'id'")
    if not is_iri(entity_id) or entity_id == DELETE:
        raise BadRequestData(f"Entity id {entity_id!r} is not an absolute URI")
    out: TemporalBody = {"id": entity_id}
    types = body.get("type", body.get("@type"))
    if types is not None:
        out["type"] = parse_types(types)
    elif require_type:
        raise BadRequestData(f"Temporal entity {entity_id!r} has no 'type'")
    out.update(_members(body))
    return out


def parse_temporal_attributes(body: Any) -> TemporalBody:
    """Validate a temporal fragment (5.6.12): ``{"attrs": ..., "scope": ...}``.

    ``id`` and ``type`` may be present; the type is checked, both are left to the
    caller to compare with the Entity's.
    """
    if not isinstance(body, dict):
        raise BadRequestData("The request body must be a JSON object")
    for name in ("type", "@type"):
        if name in body:
            parse_types(body[name])
    return _members(body)


def _members(body: dict[str, Any]) -> TemporalBody:
    """The Scope and the Attributes of a temporal Entity or fragment."""
    out: TemporalBody = {"attrs": {}}
    for name, value in body.items():
        if name in ("id", "@id", "type", "@type") or name in _SYSTEM:
            continue
        if name == "scope":
            out["scope"] = _scope_instances(value)
        elif name == "expiresAt":
            # 4.22 and 5.5.4: a DateTime; the NGSI-LD Null is not one (ETSI 5611_01_02)
            if not is_utc_datetime(value):
                raise BadRequestData(f"expiresAt {value!r} is not a UTC date-time")
        else:
            out["attrs"][name] = _attribute(name, value)
    return out


def _attribute(name: str, value: Any) -> list[dict[str, Any]]:
    check_name(name)
    items = value if isinstance(value, list) else [value]
    instances: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            raise BadRequestData(
                f"Attribute {name!r}: each instance of a temporal attribute is a JSON object"
            )
        if not item.keys().isdisjoint(_KIND_OF_SIMPLIFIED):
            # 4.5.9: one simplified group, or one per datasetId in an array
            instances.extend(_simplified(name, item))
        else:
            instances.extend(parse_attribute(name, item, allow_null=True))
    return instances


def _simplified(name: str, group: dict[str, Any]) -> list[dict[str, Any]]:
    """4.5.9 input: ``{"type": kind, "values": [[value, time], ...]}`` into instances."""
    members = [m for m in _KIND_OF_SIMPLIFIED if m in group]
    if len(members) != 1:
        raise BadRequestData(f"Attribute {name!r}: one of {', '.join(_KIND_OF_SIMPLIFIED)}")
    member = members[0]
    kind = group.get("type", _KIND_OF_SIMPLIFIED[member])
    if SIMPLIFIED_MEMBERS.get(kind) != member:
        raise BadRequestData(f"Attribute {name!r}: a {kind!r} has no member {member!r}")
    pairs = group[member]
    if not isinstance(pairs, list):
        raise BadRequestData(f"Attribute {name!r}: {member!r} is an array of [value, time]")
    instances: list[dict[str, Any]] = []
    main = MAIN_MEMBER[kind]
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2:
            raise BadRequestData(f"Attribute {name!r}: each of {member!r} is [value, time]")
        value, time = pair
        if isinstance(value, dict) and set(value) == {main} and main != "value":
            value = value[main]  # languageMaps, vocabs, jsons wrap the value (4.5.9)
        raw: dict[str, Any] = {"type": kind, main: value, "observedAt": time}
        if "datasetId" in group:
            raw["datasetId"] = group["datasetId"]
        instances.extend(parse_attribute(name, raw, allow_null=True))
    return instances


def _scope_instances(value: Any) -> list[dict[str, Any]]:
    """4.18 Scope (a string or strings) or 4.5.6 its temporal evolution (instances)."""
    items = value if isinstance(value, list) else [value]
    if not any(isinstance(item, dict) for item in items):
        return [{"type": "Property", "value": parse_scope(value)}]
    instances = []
    for item in items:
        if not isinstance(item, dict) or item.get("type", "Property") != "Property":
            raise BadRequestData("scope: each instance is a Property whose value is a scope")
        if "value" not in item:
            raise BadRequestData("scope: a scope instance needs its 'value'")
        inst: dict[str, Any] = {"type": "Property", "value": parse_scope(item["value"])}
        if "observedAt" in item:
            if not is_utc_datetime(item["observedAt"]):
                raise BadRequestData(f"scope: observedAt {item['observedAt']!r} is not a UTC "
                                     "date-time")
            inst["observedAt"] = item["observedAt"]
        instances.append(inst)
    return instances


def parse_instance_fragment(body: Any) -> dict[str, Any]:
    """5.6.14: the body of a Partial Update of one Attribute instance: one instance,
    its type and main member optional (an Attribute Fragment), no datasetId change."""
    if not isinstance(body, dict):
        raise BadRequestData("The request body must be a JSON object (an attribute instance)")
    fragment = {k: v for k, v in body.items() if k != "@context"}
    if not fragment:
        raise BadRequestData("The attribute instance fragment is empty")
    if "datasetId" in fragment:
        raise BadRequestData("The datasetId of an attribute instance cannot be changed")
    return parse_attribute("instance", fragment, fragment=True)[0]


def temporal_history(entity: Mapping[str, Any], now: str, new_id: InstanceIds) -> History:
    """The records a (parsed, expanded) temporal Entity or fragment adds (5.6.11, 5.6.12).

    Every instance is recorded with a new instanceId, ``createdAt`` and ``modifiedAt``
    ``now``; an instance whose value is the NGSI-LD Null is a deletion record
    (``deletedAt`` ``now``).  Instances keep their order in the body.
    """
    records: list[Instance] = []
    for name, instances in (entity.get("attrs") or {}).items():
        for inst in instances:
            stamped = {**inst, "createdAt": now, "modifiedAt": now}
            records.append(
                from_internal(name, stamped, new_id(), deleted_at=now if is_delete(inst) else None)
            )
    for inst in entity.get("scope") or ():
        records.append(scope_instance(inst["value"], now, new_id(), inst.get("observedAt")))
    record = EntityRecord(str(entity.get("id", "")), tuple(entity.get("type") or ()),
                          created_at=now, modified_at=now)
    return History(record, tuple(records))


def _rank(inst: Mapping[str, Any], position: int) -> tuple[int, int]:
    observed = inst.get("observedAt")
    return (to_micros(observed) if isinstance(observed, str) else -(2**62), position)


def latest_state(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The current state a temporal Entity implies: per attribute and datasetId its
    most recent instance by observedAt (the last one sent on a tie or without any),
    an attribute whose most recent instance is a deletion left out.

    This is the Entity the broker creates or updates when a temporal representation
    is posted (ETSI 020_17 then deletes its attributes through the core API).
    """
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name, instances in (entity.get("attrs") or {}).items():
        latest: dict[Any, tuple[tuple[int, int], dict[str, Any]]] = {}
        for position, inst in enumerate(instances):
            rank = _rank(inst, position)
            dataset = inst.get("datasetId")
            if dataset not in latest or latest[dataset][0] <= rank:
                latest[dataset] = (rank, inst)
        kept = [dict(inst) for _, inst in latest.values() if not is_delete(inst)]
        if kept:
            attrs[name] = kept
    out: dict[str, Any] = {"id": entity.get("id")}
    if entity.get("type"):
        out["type"] = list(entity["type"])
    scopes = list(entity.get("scope") or ())
    if scopes:
        best = max(enumerate(scopes), key=lambda pair: _rank(pair[1], pair[0]))[1]
        if best["value"]:
            out["scope"] = list(best["value"])
    out["attrs"] = attrs
    return out
