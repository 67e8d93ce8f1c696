"""Answering in an earlier NGSI-LD version (ETSI GS CIM 009 v1.9.1 clause 4.3.6.8).

A consumer may prefer payloads that conform to an earlier version of the
specification (HTTP ``Prefer: ngsi-ld=1.5``, 5.7.1.4 and 5.7.2.4); the broker
then amends Entity data by the fallbacks of Tables 4.3.6.8-1 to 4.3.6.8-3 and
says which version the payload conforms to (``Preference-Applied``).

:func:`amend_entity` applies the fallbacks to an internal-form entity (names
expanded, before rendering), so every representation (normalized, concise,
keyValues, GeoJSON) is amended alike:

===================  =========  =========================================
member               since      fallback for an earlier version
===================  =========  =========================================
type (several)       1.3        the first type only
scope                1.4        removed
expiresAt            1.9        removed (entity and attributes)
several instances    1.3        the default instance only (else the first)
datasetId,           1.3        removed
observedAt, unitCode
LanguageProperty     1.4        a Property whose value is the languageMap
JsonProperty,        1.8        a Property whose value is the json, the
VocabProperty,                  vocab (compacted) or the valueList
ListProperty
ListRelationship     1.8        a Relationship whose object is the objectList
objectType           1.8        removed
valueType            1.9        removed
===================  =========  =========================================
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ngsi_ld.model import Entity

__all__ = ["NATIVE", "Version", "amend_entity", "conformant", "format_version", "parse_version"]

Version = tuple[int, int]
#: the version this broker's payloads conform to
NATIVE: Version = (1, 9)

_VERSION = re.compile(r"(\d{1,3})\.(\d{1,3})(?:\.\d{1,3})?", re.ASCII)
#: kind -> (version it was introduced in, the kind it falls back to, its main member)
_KIND_FALLBACKS: dict[str, tuple[Version, str, str]] = {
    "LanguageProperty": ((1, 4), "Property", "languageMap"),
    "JsonProperty": ((1, 8), "Property", "json"),
    "VocabProperty": ((1, 8), "Property", "vocab"),
    "ListProperty": ((1, 8), "Property", "valueList"),
    "ListRelationship": ((1, 8), "Relationship", "objectList"),
}
_FALLBACK_MAIN = {"Property": "value", "Relationship": "object"}
#: instance members removed below a version (Tables 4.3.6.8-2 and 4.3.6.8-3)
_MEMBERS_SINCE: tuple[tuple[str, Version], ...] = (
    ("datasetId", (1, 3)), ("observedAt", (1, 3)), ("unitCode", (1, 3)),
    ("objectType", (1, 8)), ("valueType", (1, 9)), ("expiresAt", (1, 9)),
)


def parse_version(text: str) -> Version | None:
    """``major.minor`` (a patch part is tolerated); None when it is not a version."""
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def conformant(requested: Version) -> Version:
    """The version a payload conforms to when ``requested`` is preferred."""
    return min(requested, NATIVE)


def format_version(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def amend_entity(entity: Entity, version: Version,
                 compact: Callable[[str], str] | None = None) -> tuple[Entity, bool]:
    """The entity amended to conform to ``version`` and whether anything changed.

    ``compact`` renders vocab IRIs when a VocabProperty becomes a Property (its
    value is then no longer compacted by the renderer).  The input is not modified.
    """
    if version >= NATIVE:
        return entity, False
    out: Entity = entity.copy()
    changed = False
    if version < (1, 9) and "expiresAt" in out:
        del out["expiresAt"]
        changed = True
    if version < (1, 4) and "scope" in out:
        del out["scope"]
        changed = True
    types = out.get("type")
    if version < (1, 3) and isinstance(types, list) and len(types) > 1:
        out["type"] = types[:1]
        changed = True
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name, instances in entity.get("attrs", {}).items():
        kept = instances
        if version < (1, 3) and len(instances) > 1:
            default = [i for i in instances if "datasetId" not in i]
            kept = (default or instances)[:1]
            changed = True
        amended = []
        for inst in kept:
            new, altered = _amend_instance(inst, version, compact)
            amended.append(new)
            changed = changed or altered
        attrs[name] = amended
    if "attrs" in entity:
        out["attrs"] = attrs
    return out, changed


def _amend_instance(inst: dict[str, Any], version: Version,
                    compact: Callable[[str], str] | None) -> tuple[dict[str, Any], bool]:
    out = dict(inst)
    changed = False
    fallback = _KIND_FALLBACKS.get(inst.get("type", ""))
    if fallback is not None and version < fallback[0]:
        _, kind, main = fallback
        value = out.pop(main, None)
        if main == "vocab" and compact is not None:
            value = [compact(v) for v in value] if isinstance(value, list) else compact(value)
        out["type"] = kind
        out[_FALLBACK_MAIN[kind]] = value
        changed = True
    for member, since in _MEMBERS_SINCE:
        if version < since and member in out:
            del out[member]
            changed = True
    subs = inst.get("sub")
    if subs:
        new_subs = {}
        for name, sub in subs.items():
            new_subs[name], altered = _amend_instance(sub, version, compact)
            changed = changed or altered
        out["sub"] = new_subs
    return out, changed
