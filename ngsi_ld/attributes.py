"""Parsing and validation of NGSI-LD attributes into the internal form.

Clause 4.5 and 5.2: Property, Relationship, GeoProperty, LanguageProperty,
VocabProperty, JsonProperty, ListProperty, ListRelationship; normalized and
concise input (4.5.1), keyValues input (4.5.3); multi-attributes (4.5.5).

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

import re
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.geojson import is_geometry, validate_geometry
from ngsi_ld.instances import DELETE as NULL
from ngsi_ld.instances import MAIN_MEMBER, MAIN_MEMBERS, is_delete
from ngsi_ld.timeutil import is_date, is_datetime, is_time

__all__ = [
    "KINDS",
    "MAIN_MEMBER",
    "NULL",
    "RESERVED_NAMES",
    "check_name",
    "is_deletion",
    "is_iri",
    "is_term",
    "parse_attribute",
]

KINDS = frozenset(MAIN_MEMBER)
#: arrays and objects one attribute value may nest
MAX_VALUE_DEPTH = 32
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
_COMMON = frozenset({"observedAt", "unitCode", "datasetId"})
# Sent by clients but owned by the broker: ignored on input.
_IGNORED = frozenset({"createdAt", "modifiedAt", "deletedAt", "instanceId", "@context"})

#: Names that cannot be attribute or sub-attribute names (NGSI-LD structural members).
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
        *_IGNORED,
        *MAIN_MEMBERS,
    }
)

_TERM = re.compile(r"[^\W\d][\w.\-]*")
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+")
_LANG_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|@none")


def is_term(name: object) -> bool:
    """True for a JSON-LD term usable as a name (NCName-like: no colon, not digit-first)."""
    return isinstance(name, str) and _TERM.fullmatch(name) is not None


def is_iri(value: object) -> bool:
    """True for an absolute URI or compact IRI (``scheme:rest``, no spaces)."""
    return isinstance(value, str) and _IRI.fullmatch(value) is not None


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
    name: str, value: Any, *, key_values: bool = False, allow_null: bool = False
) -> list[dict[str, Any]]:
    """Validate one attribute and return its instances in the internal form.

    ``value`` is the attribute as sent: normalized or concise (or, with
    ``key_values``, a bare value), possibly an array of instances.
    """
    check_name(name)
    if key_values:
        return [_key_value(name, value, allow_null)]
    if isinstance(value, list) and _looks_multi(value):
        instances = [_instance(name, item, allow_null, top=True) for item in value]
        _check_datasets(name, instances)
        return instances
    return [_instance(name, value, allow_null, top=True)]


def _looks_multi(items: list[Any]) -> bool:
    """An array is a multi-attribute when its items look like attribute instances."""
    return any(
        isinstance(item, dict) and (_kind_name(item) in KINDS or MAIN_MEMBERS & item.keys())
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


def _key_value(name: str, value: Any, allow_null: bool) -> dict[str, Any]:
    # 4.5.3 simplified input: everything is a Property but geometries.
    if allow_null and value == NULL:
        return {"type": "Property", "value": NULL}
    if value is None:
        raise BadRequestData(f"Attribute {name!r}: null is not a valid value")
    _check_depth(f"Attribute {name!r}", value)
    if is_geometry(value):
        validate_geometry(value, where=f"Attribute {name!r}")
        return {"type": "GeoProperty", "value": value}
    return {"type": "Property", "value": value}


def _instance(
    name: str, raw: Any, allow_null: bool, *, top: bool, level: int = 0
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
            return _members(name, where, kind, raw, allow_null, top, level)
    # before anything recurses into it (geometry checks, error details); never
    # stricter than the two limits, which the parts below check one by one
    _check_depth(where, raw, MAX_VALUE_DEPTH + MAX_SUB_ATTRIBUTE_DEPTH + 2)
    if allow_null and raw == NULL:
        return {"type": "Property", "value": NULL}
    if raw is None:
        raise BadRequestData(f"{where}: null is not a valid value")
    if not isinstance(raw, dict):
        if isinstance(raw, list) and not top and _looks_multi(raw):
            raise BadRequestData(f"{where}: a sub-attribute cannot have several instances")
        _check_depth(where, raw)
        return {"type": "Property", "value": raw}  # concise: a bare value
    kind = _kind_name(raw)
    if "type" not in raw:
        present = [m for m in _KIND_OF_MEMBER if m in raw]
        if len(present) > 1:
            raise BadRequestData(f"{where}: ambiguous, has both {present[0]!r} and {present[1]!r}")
        if not present:
            if is_geometry(raw):
                validate_geometry(raw, where=where)
                return {"type": "GeoProperty", "value": raw}
            stray = sorted((_COMMON | {"objectType"}) & raw.keys())
            if stray:
                raise BadRequestData(f"{where}: has {stray[0]!r} but no value")
            _check_depth(where, raw)
            return {"type": "Property", "value": raw}  # concise: an object value
        kind = _KIND_OF_MEMBER[present[0]]
        if kind == "Property" and is_geometry(raw["value"]):
            kind = "GeoProperty"
    elif kind is None or kind not in KINDS:
        if is_geometry(raw):
            validate_geometry(raw, where=where)
            return {"type": "GeoProperty", "value": raw}
        raise BadRequestData(f"{where}: type {raw['type']!r} is not an attribute type")
    return _members(name, where, kind, raw, allow_null, top, level)


def _members(
    name: str, where: str, kind: str, raw: dict[str, Any], allow_null: bool, top: bool,
    level: int,
) -> dict[str, Any]:
    main = MAIN_MEMBER[kind]
    if main not in raw:
        raise BadRequestData(f"{where}: a {kind} needs the member {main!r}")
    inst: dict[str, Any] = {"type": kind}
    if allow_null and _is_null_main(raw[main]):
        inst[main] = raw[main]
    else:
        inst[main] = _main_value(where, kind, raw[main])
    sub: dict[str, Any] = {}
    for key, val in raw.items():
        if key in ("type", main) or key in _IGNORED:
            continue
        if key in MAIN_MEMBERS:
            raise BadRequestData(f"{where}: {key!r} is not a member of a {kind}")
        if key == "objectType":
            if kind not in ("Relationship", "ListRelationship"):
                raise BadRequestData(f"{where}: 'objectType' is only allowed on relationships")
            inst[key] = _object_type(where, val)
        elif key == "observedAt":
            if not is_datetime(val):
                raise BadRequestData(f"{where}: observedAt {val!r} is not an ISO 8601 date-time")
            inst[key] = val
        elif key == "unitCode":
            if not isinstance(val, str) or not val:
                raise BadRequestData(f"{where}: unitCode must be a non-empty string")
            inst[key] = val
        elif key == "datasetId":
            if not top:
                raise BadRequestData(f"{where}: a sub-attribute cannot have a datasetId")
            if not is_iri(val):
                raise BadRequestData(f"{where}: datasetId {val!r} is not a URI")
            inst[key] = val
        else:
            check_name(key, what="sub-attribute")
            sub[key] = _instance(key, val, allow_null, top=False, level=level + 1)
    if sub:
        inst["sub"] = sub
    return inst


def _is_null_main(value: Any) -> bool:
    if value == NULL or value == [NULL]:
        return True
    return isinstance(value, dict) and value.get("@none") == NULL


def _main_value(where: str, kind: str, value: Any) -> Any:
    if value is None:
        raise BadRequestData(f"{where}: {MAIN_MEMBER[kind]!r} cannot be null")
    _check_depth(where, value)
    if kind == "Property":
        if isinstance(value, dict):
            _check_literal(where, value)
    elif kind == "GeoProperty":
        validate_geometry(value, where=where)
    elif kind == "Relationship":
        targets = value if isinstance(value, list) else [value]
        if not targets or not all(is_iri(t) for t in targets):
            raise BadRequestData(f"{where}: object must be a URI or a non-empty list of URIs")
    elif kind == "LanguageProperty":
        _check_language_map(where, value)
    elif kind == "VocabProperty":
        words = value if isinstance(value, list) else [value]
        if not words or not all(isinstance(w, str) and w for w in words):
            raise BadRequestData(f"{where}: vocab must be a string or a non-empty list of strings")
    elif kind == "ListProperty":
        if not isinstance(value, list):
            raise BadRequestData(f"{where}: valueList must be an array")
    elif kind == "ListRelationship":
        return _object_list(where, value)
    return value  # JsonProperty: any JSON, untouched


def _check_depth(where: str, value: Any, limit: int = MAX_VALUE_DEPTH) -> None:
    """BadRequestData if ``value`` nests more than ``limit`` arrays and objects."""
    if value.__class__ is not dict and value.__class__ is not list:
        return
    stack = [(value, 1)]
    while stack:  # iterative: a deep value must not exhaust Python's recursion limit
        node, depth = stack.pop()
        if depth > limit:
            raise BadRequestData(
                f"{where}: the value nests deeper than {MAX_VALUE_DEPTH} arrays and objects"
            )
        for child in node.values() if node.__class__ is dict else node:
            if child.__class__ is dict or child.__class__ is list:
                stack.append((child, depth + 1))


def _check_literal(where: str, value: Any) -> None:
    # 4.6.x typed literals: {"@type": "DateTime", "@value": "..."}
    if not isinstance(value, dict) or "@value" not in value:
        return
    literal_type = value.get("@type")
    if literal_type is None:
        return
    if not isinstance(literal_type, str):
        raise BadRequestData(f"{where}: '@type' of a typed value must be a string")
    short = literal_type.removeprefix("https://uri.etsi.org/ngsi-ld/")
    check = {"DateTime": is_datetime, "Date": is_date, "Time": is_time}.get(short)
    if check is not None and not check(value["@value"]):
        raise BadRequestData(f"{where}: {value['@value']!r} is not a valid {short}")


def _check_language_map(where: str, value: Any) -> None:
    if not isinstance(value, dict) or not value:
        raise BadRequestData(f"{where}: languageMap must be a non-empty JSON object")
    for tag, text in value.items():
        if _LANG_TAG.fullmatch(tag) is None:
            raise BadRequestData(f"{where}: {tag!r} is not a language tag")
        texts = text if isinstance(text, list) else [text]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise BadRequestData(f"{where}: languageMap[{tag!r}] must be a string or strings")


def _object_type(where: str, value: Any) -> Any:
    names = value if isinstance(value, list) else [value]
    if not names or not all(is_term(n) or is_iri(n) for n in names):
        raise BadRequestData(f"{where}: objectType must be a type name or a list of them")
    return value


def _object_list(where: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise BadRequestData(f"{where}: objectList must be an array")
    out: list[str] = []
    for item in value:
        target: Any = item.get("object") if isinstance(item, dict) else item
        if not is_iri(target):
            raise BadRequestData(f"{where}: objectList item {item!r} is not a URI")
        out.append(target)
    return out
