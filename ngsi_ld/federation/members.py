"""Validation of the structured members of a registration (clauses 5.2.8, 5.2.10, 5.2.11,
5.2.22, 5.2.34 and 4.3.6.5/4.3.6.6).

One function per data type; each returns the model value
(:mod:`ngsi_ld.federation.model`) or raises BadRequestData naming the member.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation.durations import duration_seconds
from ngsi_ld.federation.model import EntityInfo, Management, RegistrationInfo, TimeInterval
from ngsi_ld.geojson import validate_geometry
from ngsi_ld.identifiers import is_iri, is_term
from ngsi_ld.query import compile_pattern, validate_scope
from ngsi_ld.timeutil import is_utc_datetime, parse_datetime

Expand = Callable[[str], str]

#: RFC 9110 token: what an HTTP header name may be
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# 4.3.6.6: contextSourceInfo keys the broker interprets rather than passes on
_CONTENT_TYPES = ("application/json", "application/ld+json")
_ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")


def text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{where} must be a non-empty string, not {value!r}")
    return value


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequestData(f"{where} must be true or false, not {value!r}")
    return value


def positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise BadRequestData(f"{where} must be a number greater than 0, not {value!r}")
    return value


def _type_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not (is_term(value) or is_iri(value)):
        raise BadRequestData(f"{where} must be an entity type name, not {value!r}")
    return value


# 5.2.8 EntityInfo
def entity_info(raw: Any, where: str, expand: Expand) -> EntityInfo:
    if not isinstance(raw, dict):
        raise BadRequestData(f"{where} must be an object with type and optionally id or "
                             "idPattern")
    unknown = set(raw) - {"id", "idPattern", "type"}
    if unknown:
        raise BadRequestData(f"{where} has unknown members: {', '.join(sorted(unknown))}")
    if "type" not in raw:
        raise BadRequestData(f"{where} needs a type")
    kind = raw["type"]
    if isinstance(kind, list):
        if not kind:
            raise BadRequestData(f"{where}.type must not be an empty array")
        types = tuple(expand(_type_name(t, f"{where}.type")) for t in kind)
    else:
        types = (expand(_type_name(kind, f"{where}.type")),)
    entity_id = raw.get("id")
    if entity_id is not None and not is_iri(entity_id):
        raise BadRequestData(f"{where}.id must be a URI, not {entity_id!r}")
    pattern = raw.get("idPattern")
    if pattern is not None:
        compile_pattern(text(pattern, f"{where}.idPattern"), f"{where}.idPattern")
    return EntityInfo(types, entity_id, pattern, isinstance(kind, list))


def _names(value: Any, where: str, expand: Expand) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise BadRequestData(f"{where} must be a non-empty array of attribute names")
    out = []
    for item in value:
        if not isinstance(item, str) or not (is_term(item) or is_iri(item)):
            raise BadRequestData(f"{where}: {item!r} is not an attribute name")
        out.append(expand(item))
    return tuple(dict.fromkeys(out))


# 5.2.10 RegistrationInfo
def registration_info(raw: Any, where: str, expand: Expand) -> RegistrationInfo:
    if not isinstance(raw, dict):
        raise BadRequestData(f"{where} must be an object")
    known = {"entities", "propertyNames", "relationshipNames"}
    unknown = set(raw) - known
    if unknown:
        raise BadRequestData(f"{where} has unknown members: {', '.join(sorted(unknown))}")
    if not known & set(raw):
        raise BadRequestData(f"{where} needs entities, propertyNames or relationshipNames")
    entities = None
    if "entities" in raw:
        items = raw["entities"]
        if not isinstance(items, list) or not items:
            raise BadRequestData(f"{where}.entities must be a non-empty array")
        entities = tuple(entity_info(item, f"{where}.entities[{i}]", expand)
                         for i, item in enumerate(items))
    props = rels = None
    if "propertyNames" in raw:
        props = _names(raw["propertyNames"], f"{where}.propertyNames", expand)
    if "relationshipNames" in raw:
        rels = _names(raw["relationshipNames"], f"{where}.relationshipNames", expand)
    return RegistrationInfo(entities, props, rels)


def information(value: Any, expand: Expand) -> tuple[RegistrationInfo, ...]:
    if not isinstance(value, list) or not value:
        raise BadRequestData("information must be a non-empty array of RegistrationInfo")
    return tuple(registration_info(item, f"information[{i}]", expand)
                 for i, item in enumerate(value))


# 5.2.11 TimeInterval
def interval(value: Any, where: str) -> TimeInterval:
    if not isinstance(value, dict):
        raise BadRequestData(f"{where} must be an object with startAt and optionally endAt")
    unknown = set(value) - {"startAt", "endAt"}
    if unknown:
        raise BadRequestData(f"{where} has unknown members: {', '.join(sorted(unknown))}")
    start = value.get("startAt")
    if start is None:
        raise BadRequestData(f"{where} needs startAt")
    end = value.get("endAt")
    for name, stamp in (("startAt", start), ("endAt", end)):
        if stamp is not None and not is_utc_datetime(stamp):
            raise BadRequestData(f"{where}.{name} must be a DateTime, not {stamp!r}")
    if end is not None and parse_datetime(end) <= parse_datetime(start):
        raise BadRequestData(f"{where}: endAt must be after startAt")
    return TimeInterval(start, end)


def geometry(value: Any, where: str) -> dict[str, Any]:
    validate_geometry(value, where=where)
    return dict(value)


def scope(value: Any) -> str | tuple[str, ...]:
    # 4.18: one scope or an array of them, each concrete (no + or #)
    if isinstance(value, list):
        if not value:
            raise BadRequestData("scope must not be an empty array")
        for item in value:
            validate_scope(item)
        return tuple(value)
    validate_scope(value)
    return str(value)


# 5.2.34 RegistrationManagementInfo
def management(value: Any) -> Management:
    if not isinstance(value, dict):
        raise BadRequestData(f"management must be an object, not {value!r}")
    unknown = set(value) - {"localOnly", "cacheDuration", "timeout", "cooldown"}
    if unknown:
        raise BadRequestData(f"management has unknown members: {', '.join(sorted(unknown))}")
    local_only = cache = timeout = cooldown = None
    if "localOnly" in value:
        local_only = boolean(value["localOnly"], "management.localOnly")
    if "cacheDuration" in value:
        cache = text(value["cacheDuration"], "management.cacheDuration")
        duration_seconds(cache, what="management.cacheDuration")
    if "timeout" in value:
        timeout = positive(value["timeout"], "management.timeout")
    if "cooldown" in value:
        cooldown = positive(value["cooldown"], "management.cooldown")
    return Management(local_only, cache, timeout, cooldown)


# 5.2.22 KeyValuePair, as contextSourceInfo holds them (4.3.6.5, 4.3.6.6)
def context_source_info(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise BadRequestData("contextSourceInfo must be an array of {key, value} objects")
    out = []
    for item in value:
        if (not isinstance(item, dict) or set(item) != {"key", "value"}
                or not isinstance(item["key"], str) or not isinstance(item["value"], str)):
            raise BadRequestData(f"every item of contextSourceInfo must be {{\"key\": string, "
                                 f"\"value\": string}}, not {item!r}")
        key, val = item["key"], item["value"]
        # sent to the source as an HTTP header (4.3.6.5): a token, and a value
        # without line breaks that would inject further headers
        if not _TOKEN.fullmatch(key) or "\r" in val or "\n" in val:
            raise BadRequestData(f"contextSourceInfo {key!r} cannot be sent as an HTTP header")
        _check_processed(key, val)
        out.append((key, val))
    return tuple(out)


def _check_processed(key: str, value: str) -> None:
    # 4.3.6.6: keys with a meaning for the broker itself
    if key == "contentType" and value not in _CONTENT_TYPES:
        raise BadRequestData(f"contextSourceInfo contentType must be one of "
                             f"{', '.join(_CONTENT_TYPES)}, not {value!r}")
    if key == "accept" and value not in _ACCEPTS:
        raise BadRequestData(f"contextSourceInfo accept must be one of {', '.join(_ACCEPTS)}, "
                             f"not {value!r}")
    if key == "jsonldContext" and urlsplit(value).scheme not in ("http", "https"):
        raise BadRequestData(f"contextSourceInfo jsonldContext must be an http(s) URL, "
                             f"not {value!r}")


__all__ = [
    "boolean",
    "context_source_info",
    "entity_info",
    "geometry",
    "information",
    "interval",
    "management",
    "positive",
    "registration_info",
    "scope",
    "text",
]
