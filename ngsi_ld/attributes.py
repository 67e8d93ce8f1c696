"""Parsing and validation of NGSI-LD attributes into the internal form.

Clause 4.5 and 5.2: Property, Relationship, GeoProperty, LanguageProperty,
VocabProperty, JsonProperty, ListProperty, ListRelationship; normalized and
concise input (4.5.1), keyValues input (4.5.3); multi-attributes (4.5.5).
The value of each kind's main member is checked by :mod:`ngsi_ld.values`.

An attribute is returned as a list of instances (docs/architecture.md).  With
``allow_null=True`` (update and merge bodies) the NGSI-LD Null
``urn:ngsi-ld:null`` asks for a deletion: it is kept as the instance's main
member (``{"type": kind, "value": NULL}``, plus ``datasetId`` when one was
given), the one marker ``ngsi_ld.instances.is_delete`` and the write operations
understand.  A JSON ``null`` is never valid NGSI-LD data and is refused.

Nesting is bounded (``MAX_VALUE_DEPTH``, ``MAX_SUB_ATTRIBUTE_DEPTH``) so that
every stored entity can be encoded by every backend: MongoDB refuses documents
nested deeper than 100 levels, orjson deeper than 254.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.geojson import validate_geometry
from ngsi_ld.identifiers import is_iri, is_term
from ngsi_ld.instances import DELETE as NULL
from ngsi_ld.instances import MAIN_MEMBER, MAIN_MEMBERS, is_delete
from ngsi_ld.timeutil import is_utc_datetime
from ngsi_ld.values import (
    MAX_VALUE_DEPTH,
    check_depth,
    check_language_value_type,
    is_supported_geometry,
    main_value,
    object_type,
)

__all__ = [
    "GEO_NAMES",
    "IGNORED_MEMBERS",
    "INSTANCE_MEMBERS",
    "KINDS",
    "MAIN_MEMBER",
    "MAX_VALUE_DEPTH",
    "NULL",
    "PROOF",
    "RESERVED_NAMES",
    "check_member",
    "check_name",
    "is_deletion",
    "is_iri",
    "is_null_main",
    "is_term",
    "parse_attribute",
]

KINDS = frozenset(MAIN_MEMBER)
#: sub-attributes of sub-attributes... (each level nests two in the internal form)
MAX_SUB_ATTRIBUTE_DEPTH = 16
# Concise input: a main member without "type" gives the kind (4.5.1).
_KIND_OF_MEMBER = {
    "value": "Property",
    "object": "Relationship",
    "languageMap": "LanguageProperty",
    "vocab": "VocabProperty",
    "json": "JsonProperty",
    "valueList": "ListProperty",
    "objectList": "ListRelationship",
}
# Members an instance may carry besides its main member and sub-attributes.
_COMMON = frozenset({"observedAt", "unitCode", "datasetId", "expiresAt", "valueType"})
#: sent by clients but owned by the broker: ignored on input
IGNORED_MEMBERS = frozenset({"createdAt", "modifiedAt", "deletedAt", "instanceId"})
# 4.5.2.2 and 4.5.3.2, "Prohibited" and "Output Only": members of notifications
# (showChanges) and of inline Linked Entity retrieval, never valid on input.
_OUTPUT_ONLY = frozenset({
    "previousValue", "previousObject", "previousLanguageMap", "previousJson", "previousVocab",
    "previousValueList", "previousObjectList", "entity", "entityList",
})
# 4.5.2.2: entityIdSealed and entityTypeSealed belong to the ngsildproof Property only.
_SEALED = frozenset({"entityIdSealed", "entityTypeSealed"})
#: the Property carrying a W3C Data Integrity proof (4.5.2.2, annex C.11), as a term
#: or as its core IRI (the core @context is protected: the term cannot mean anything else)
PROOF = frozenset({"ngsildproof", "https://uri.etsi.org/ngsi-ld/ngsildproof"})
# 4.5.3.2 and 4.5.24.2: relationships and raw JSON are unitless.
_UNITLESS = frozenset({"Relationship", "ListRelationship", "JsonProperty"})
#: 4.7.1: the Properties the core @context defines as GeoProperties
GEO_NAMES = frozenset(
    name
    for term in ("location", "observationSpace", "operationSpace")
    for name in (term, "https://uri.etsi.org/ngsi-ld/" + term)
)

#: the members an instance carries besides its main member, none a sub-attribute
INSTANCE_MEMBERS = _COMMON | {"objectType"} | _SEALED

#: Names that cannot be attribute or sub-attribute names (NGSI-LD structural members,
#: and the core context's non-reified Properties, clause 4.5.1).
RESERVED_NAMES = frozenset(
    {
        "id",
        "@id",
        "type",
        "@type",
        "scope",
        "@context",
        "@value",
        "@language",
        "lang",
        "objectType",
        "instanceId",
        *_COMMON,
        *IGNORED_MEMBERS,
        *_SEALED,
        *MAIN_MEMBERS,
    }
)


@dataclass(frozen=True, slots=True)
class _Mode:
    """How one request's attributes are read."""

    #: the NGSI-LD Null may stand for a main member (update, merge): a deletion
    allow_null: bool
    #: the NGSI-LD Null may be a member of an object in a Property value (merge, 5.5.4)
    null_in_objects: bool = False
    #: an Attribute Fragment (5.6.4): the main member and the type may be absent
    fragment: bool = False


#: the eight modes, made once (an entity's every attribute is read in one of them)
_MODES = {(a, n, f): _Mode(a, n, f) for a in (False, True) for n in (False, True)
          for f in (False, True)}


# Names already found valid (the same few names come in request after request);
# bounded so that endless distinct names cannot grow it without limit.
_VALID_NAMES: set[str] = set()
_VALID_NAMES_LIMIT = 10_000


def check_name(name: object, *, what: str = "attribute") -> str:
    """Return ``name`` if it is a valid, non-reserved attribute name, else raise."""
    if isinstance(name, str) and name in _VALID_NAMES:
        return name
    if not isinstance(name, str) or not (is_term(name) or is_iri(name)):
        raise BadRequestData(f"Invalid {what} name {name!r}: must be a term or an IRI")
    if name in RESERVED_NAMES:
        raise BadRequestData(f"{name!r} is reserved and cannot be used as an {what} name")
    if len(_VALID_NAMES) < _VALID_NAMES_LIMIT:
        _VALID_NAMES.add(name)
    return name


def is_deletion(instance: dict[str, Any]) -> bool:
    """True for a deletion request (the NGSI-LD Null as main member)."""
    return is_delete(instance)


def parse_attribute(
    name: str,
    value: Any,
    *,
    key_values: bool = False,
    allow_null: bool = False,
    null_in_objects: bool = False,
    fragment: bool = False,
) -> list[dict[str, Any]]:
    """Validate one attribute and return its instances in the internal form.

    ``value`` is the attribute as sent: normalized or concise (or, with
    ``key_values``, a bare value), possibly an array of instances.
    ``null_in_objects``: the NGSI-LD Null may also be a member of an object in a
    Property value (merge, clause 5.5.4).  ``fragment``: ``value`` is an Attribute
    Fragment (5.6.4), whose type and main member may be absent; such an instance
    comes back without ``type``.
    """
    check_name(name)
    mode = _MODES.get((allow_null, null_in_objects, fragment)) or _Mode(
        bool(allow_null), bool(null_in_objects), bool(fragment))
    if key_values:
        instances = [_key_value(name, value, mode)]
    elif isinstance(value, list) and _looks_multi(value):
        instances = [_instance(name, item, mode, top=True) for item in value]
        _check_datasets(name, instances)
    else:
        instances = [_instance(name, value, mode, top=True)]
    if name in GEO_NAMES:
        for inst in instances:
            _check_geo_name(name, inst)
    return instances


def _check_geo_name(name: str, inst: dict[str, Any]) -> None:
    # 4.7.1: location, observationSpace and operationSpace are GeoProperties: their
    # value is a geometry.  A "Property" holding a geometry is let through as sent
    # (Smart Data Models examples type location so); any other value is refused.
    kind = inst.get("type")
    if kind is None or kind == "GeoProperty" or is_delete(inst):
        return
    if kind != "Property" or not is_supported_geometry(inst.get("value")):
        raise BadRequestData(f"Attribute {name!r} is a GeoProperty: its value is a geometry")


def _looks_multi(items: list[Any]) -> bool:
    """An array is a multi-attribute when its items look like attribute instances."""
    return any(
        isinstance(item, dict) and (_kind_name(item) in KINDS or item.keys() & MAIN_MEMBERS)
        for item in items
    )


def _kind_name(obj: dict[str, Any]) -> str | None:
    kind = obj.get("type")
    return kind if isinstance(kind, str) else None


def _check_datasets(name: str, instances: list[dict[str, Any]]) -> None:
    # 4.5.5 multi-attribute: one default instance at most, datasetIds unique.
    seen: set[str | None] = set()
    for inst in instances:
        ds = inst.get("datasetId")
        if ds in seen:
            which = "default instance (no datasetId)" if ds is None else f"datasetId {ds!r}"
            raise BadRequestData(f"Attribute {name!r} has more than one {which}")
        seen.add(ds)


def _key_value(name: str, value: Any, mode: _Mode) -> dict[str, Any]:
    # 4.5.3 simplified input: everything is a Property but geometries.
    where = f"Attribute {name!r}"
    if mode.allow_null and value == NULL:
        return {"type": "Property", "value": NULL}
    if value is None:
        raise BadRequestData(f"{where}: null is not a valid value")
    if is_supported_geometry(value):
        return {"type": "GeoProperty", "value": main_value(where, "GeoProperty", value)}
    value = main_value(where, "Property", value, null_in_objects=mode.null_in_objects)
    return {"type": "Property", "value": value}


def _instance(
    name: str, raw: Any, mode: _Mode, *, top: bool, level: int = 0
) -> dict[str, Any]:
    where = f"Attribute {name!r}" if top else f"Sub-attribute {name!r}"
    if level > MAX_SUB_ATTRIBUTE_DEPTH:
        raise BadRequestData(
            f"{where}: sub-attributes nest deeper than {MAX_SUB_ATTRIBUTE_DEPTH} levels"
        )
    if raw.__class__ is dict:
        kind = raw.get("type")
        if kind.__class__ is str and kind in KINDS:
            # The normalized form, by far the most common: straight to its members.
            return _members(name, where, kind, raw, mode, top, level)
    # before anything recurses into it (geometry checks, error details); never
    # stricter than the two limits, which the parts below check one by one
    check_depth(where, raw, MAX_VALUE_DEPTH + MAX_SUB_ATTRIBUTE_DEPTH + 2)
    if mode.allow_null and raw == NULL:
        return {"type": "Property", "value": NULL}
    if raw is None:
        raise BadRequestData(f"{where}: null is not a valid value")
    if not isinstance(raw, dict):
        if isinstance(raw, list) and not top and _looks_multi(raw):
            raise BadRequestData(f"{where}: a sub-attribute cannot have several instances")
        value = main_value(where, "Property", raw, null_in_objects=mode.null_in_objects)
        return {"type": "Property", "value": value}  # concise: a bare value
    kind = _kind_name(raw)
    if "type" not in raw:
        present = [m for m in _KIND_OF_MEMBER if m in raw]
        if len(present) > 1:
            raise BadRequestData(f"{where}: ambiguous, has both {present[0]!r} and {present[1]!r}")
        if not present:
            if is_supported_geometry(raw):
                validate_geometry(raw, where=where)
                return {"type": "GeoProperty", "value": raw}
            if mode.fragment and top:
                return _members(name, where, None, raw, mode, top, level)
            stray = sorted(raw.keys() & (_COMMON | {"objectType"}))
            if stray:
                raise BadRequestData(f"{where}: has {stray[0]!r} but no value")
            value = main_value(where, "Property", raw, null_in_objects=mode.null_in_objects)
            return {"type": "Property", "value": value}  # concise: an object value
        kind = _KIND_OF_MEMBER[present[0]]
        if kind == "Property" and is_supported_geometry(raw["value"]):
            kind = "GeoProperty"
    elif kind is None or kind not in KINDS:
        if is_supported_geometry(raw):
            validate_geometry(raw, where=where)
            return {"type": "GeoProperty", "value": raw}
        raise BadRequestData(f"{where}: type {raw['type']!r} is not an attribute type")
    return _members(name, where, kind, raw, mode, top, level)


def _members(
    name: str, where: str, kind: str | None, raw: dict[str, Any], mode: _Mode, top: bool,
    level: int,
) -> dict[str, Any]:
    """The instance of ``raw`` (``kind`` None: an Attribute Fragment without type)."""
    main = MAIN_MEMBER[kind] if kind is not None else None
    inst: dict[str, Any] = {}
    if kind is not None and (main in raw or "type" in raw or not mode.fragment):
        inst["type"] = kind
    if main is not None:
        if main in raw:
            if mode.allow_null and is_null_main(raw[main]):
                inst[main] = raw[main]
            else:
                inst[main] = main_value(
                    where, kind or "", raw[main], null_in_objects=mode.null_in_objects
                )
        elif not mode.fragment:
            raise BadRequestData(f"{where}: a {kind} needs the member {main!r}")
    sub: dict[str, Any] = {}
    for key, val in raw.items():
        if key == "type" or key == main or key in IGNORED_MEMBERS:
            continue
        if key in MAIN_MEMBERS:
            raise BadRequestData(f"{where}: {key!r} is not a member of a {kind or 'fragment'}")
        if key in _COMMON or key == "objectType" or key in _SEALED:
            check_member(where, name, kind, key, val, inst, top=top)
        elif key == "@context":
            # 4.5.1 and 5.5.7: the @context of a request is the body's, never an attribute's
            raise BadRequestData(f"{where}: an attribute cannot carry an embedded @context")
        elif key in _OUTPUT_ONLY:
            raise BadRequestData(f"{where}: {key!r} is an output member, not valid in a request")
        else:
            check_name(key, what="sub-attribute")
            sub[key] = _instance(key, val, mode, top=False, level=level + 1)
    if sub:
        inst["sub"] = sub
    if name in PROOF and main in inst and not is_delete(inst):
        _check_proof(where, inst)
    return inst


def check_member(
    where: str, name: str, kind: str | None, key: str, val: Any, inst: dict[str, Any], *,
    top: bool,
) -> None:
    """Check one of ``INSTANCE_MEMBERS`` of an instance and set it on ``inst``, as
    :func:`parse_attribute` does (BadRequestData if it is not valid there)."""
    if key == "objectType":
        if kind not in ("Relationship", "ListRelationship", None):
            raise BadRequestData(f"{where}: 'objectType' is only allowed on relationships")
        inst[key] = object_type(where, val)
    elif key in ("observedAt", "expiresAt"):
        # 4.8 and 4.22: temporal properties are DateTimes as 4.6.3 writes them (UTC, "Z")
        if not is_utc_datetime(val):
            raise BadRequestData(
                f"{where}: {key} {val!r} is not a UTC date-time (YYYY-MM-DDThh:mm:ssZ)"
            )
        inst[key] = val
    elif key == "unitCode":
        if kind in _UNITLESS:
            raise BadRequestData(f"{where}: a {kind} has no unitCode")
        if not isinstance(val, str) or not val:
            raise BadRequestData(f"{where}: unitCode must be a non-empty string")
        inst[key] = val
    elif key == "valueType":
        if not isinstance(val, str) or not val:
            raise BadRequestData(f"{where}: valueType must be a non-empty string")
        if kind == "LanguageProperty":
            check_language_value_type(where, val)
        inst[key] = val
    elif key == "datasetId":
        if not top:
            raise BadRequestData(f"{where}: a sub-attribute cannot have a datasetId")
        if val == "@none":
            return  # 4.5.5.1: "@none" names the default instance, which has no datasetId
        if val == NULL:
            raise BadRequestData(f"{where}: a datasetId cannot be deleted with the NGSI-LD Null")
        if not is_iri(val):
            raise BadRequestData(f"{where}: datasetId {val!r} is not a URI")
        inst[key] = val
    else:  # entityIdSealed, entityTypeSealed
        if name not in PROOF:
            raise BadRequestData(f"{where}: {key!r} is only allowed on the ngsildproof Property")
        valid = is_iri(val) if key == "entityIdSealed" else is_term(val) or is_iri(val)
        if not valid:
            raise BadRequestData(f"{where}: {key} {val!r} is not a valid entity id or type")
        inst[key] = val


def _check_proof(where: str, inst: dict[str, Any]) -> None:
    # 4.5.2.2: "a Property ... The value of its value element shall be an object
    # containing the W3C Data integrity proof structure"
    if inst.get("type") != "Property" or not isinstance(inst.get("value"), dict):
        raise BadRequestData(f"{where}: ngsildproof is a Property whose value is a proof object")


def is_null_main(value: Any) -> bool:
    """True if ``value``, a main member's, is the NGSI-LD Null asking for a deletion
    (as itself, in a list, or as a LanguageMap's ``@none``)."""
    if value == NULL or value == [NULL]:
        return True
    return isinstance(value, dict) and value.get("@none") == NULL
