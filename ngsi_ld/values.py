"""Validation of the main member of an attribute instance: its value space.

Clause 4.5 (one main member per attribute kind), 4.6.3 (supported data types
for Values), 4.7 (GeoJSON geometries), 4.5.18 (language maps), 4.5.24
(JsonProperty) and 5.5.4 (where the NGSI-LD Null may appear).  Pure functions
on decoded JSON used by :mod:`ngsi_ld.attributes`; each problem is a
BadRequestData naming the attribute.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from ngsi_ld.errors import BadRequestData
from ngsi_ld.geojson import is_geometry, validate_geometry
from ngsi_ld.identifiers import is_entity_id, is_iri, is_term
from ngsi_ld.instances import DELETE as NULL
from ngsi_ld.instances import MAIN_MEMBER
from ngsi_ld.timeutil import is_date, is_datetime, is_time

__all__ = [
    "MAX_VALUE_DEPTH",
    "check_depth",
    "is_supported_geometry",
    "kept_as_sent",
    "literal_check",
    "main_value",
    "object_list",
    "object_type",
]

#: arrays and objects one attribute value may nest
MAX_VALUE_DEPTH = 32

_LANG_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|@none")
# 5.2.32 (Table 5.2.32-1): the valueType of a LanguageProperty is rdf:langString.
_LANG_STRING = frozenset(
    {"langString", "rdf:langString", "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"}
)
_NULL_BYTES = NULL.encode()
#: the typed literals whose @value is checked (4.6.3), by their short @type
_LITERAL_CHECKS: dict[str, Callable[[Any], bool]] = {
    "DateTime": is_datetime, "Date": is_date, "Time": is_time}
#: the prefix a typed literal's @type may have expanded (its short name checked)
_CORE_PREFIX = "https://uri.etsi.org/ngsi-ld/"


def is_supported_geometry(value: Any) -> bool:
    """A GeoJSON geometry a GeoProperty may hold: every type but GeometryCollection (4.7.1)."""
    return is_geometry(value) and value.get("type") != "GeometryCollection"


def main_value(where: str, kind: str, value: Any, *, null_in_objects: bool = False) -> Any:
    """The checked main member of a ``kind`` instance (a GeoProperty's string-encoded
    geometry decoded, ListRelationship items reduced to their URIs).

    ``null_in_objects``: the NGSI-LD Null may appear as a member of a JSON object
    inside a Property value (merge fragments only, clause 5.5.4).
    """
    if value is None:
        raise BadRequestData(f"{where}: {MAIN_MEMBER[kind]!r} cannot be null")
    if value.__class__ is not dict and value.__class__ is not list:
        encoded = None  # nothing nested
    else:
        encoded = _depth_checked(where, value)
    if kind == "Property":
        if value.__class__ is dict or value.__class__ is list:
            if value.__class__ is dict:
                _check_literal(where, value)
            if not null_in_objects:
                _reject_nested_null(where, value, encoded)
    elif kind == "GeoProperty":
        return _geometry(where, value)
    elif kind == "Relationship":
        targets = value if isinstance(value, list) else [value]
        if not targets or not all(is_entity_id(t) for t in targets):
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
        return object_list(where, value)
    elif kind == "JsonProperty" and not isinstance(value, dict | list):
        # 4.5.24.2: "json" is a raw JSON object (or an array of them), never a bare
        # scalar; the items of an array are kept whatever they are, as sent
        raise BadRequestData(f"{where}: json must be a JSON object or an array")
    return value


def check_language_value_type(where: str, value: Any) -> None:
    """5.2.32: the optional valueType of a LanguageProperty can only be rdf:langString."""
    if value not in _LANG_STRING:
        raise BadRequestData(f"{where}: the valueType of a LanguageProperty must be langString")


def _geometry(where: str, value: Any) -> Any:
    # 4.7.2: a whole geometry may come as a JSON string; it is accepted only if it
    # parses into a valid geometry, and kept as the object it encodes.
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadRequestData(f"{where}: the string is not a GeoJSON geometry") from None
        check_depth(where, value)
    validate_geometry(value, where=where)
    if value.get("type") == "GeometryCollection":
        raise BadRequestData(f"{where}: GeometryCollection is not a supported GeoProperty value")
    return value


def kept_as_sent(value: Any) -> bool:
    """True if :func:`main_value` keeps the Property value ``value``, an array or an
    object that is no typed literal (neither ``@type`` nor ``@value``), as it is, told
    from its encoding alone: no more arrays and objects in it than
    :data:`MAX_VALUE_DEPTH` and no NGSI-LD Null; False where :func:`main_value` decides
    (a value of another form, or one it must walk)."""
    if value.__class__ is dict:
        if "@type" in value or "@value" in value:
            return False
    elif value.__class__ is not list:
        return False
    try:
        encoded = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one
        return False
    return _shallow(encoded) and _NULL_BYTES not in encoded


def literal_check(literal_type: str) -> Callable[[Any], bool] | None:
    """The test :func:`main_value` makes of the ``@value`` of a typed literal whose
    ``@type`` is ``literal_type`` (4.6.3: DateTime, Date, Time), None for a type whose
    value it does not test."""
    return _LITERAL_CHECKS.get(literal_type.removeprefix(_CORE_PREFIX))


def _shallow(encoded: bytes) -> bool:
    """Whether a value of this JSON encoding surely nests no deeper than the limit: a
    value nests no deeper than it has arrays and objects, and each of them opens with a
    ``[`` or ``{`` (more may be inside strings)."""
    return encoded.count(b"[") + encoded.count(b"{") <= MAX_VALUE_DEPTH


def _depth_checked(where: str, value: dict[str, Any] | list[Any]) -> bytes | None:
    """:func:`check_depth` of ``value``, and its JSON encoding for the checks that follow
    (None: not plain JSON, an integer beyond 64 bits or past orjson's own nesting limit).
    A value :func:`_shallow` tells is walked by no Python loop."""
    try:
        encoded = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one
        check_depth(where, value)
        return None
    if not _shallow(encoded):
        check_depth(where, value)
    return encoded


def _reject_nested_null(where: str, value: Any, encoded: bytes | None) -> None:
    """5.5.4: the NGSI-LD Null as a member of an object inside a Property value
    (``encoded``: the value's JSON encoding, None if it has none)."""
    if encoded is not None and _NULL_BYTES not in encoded:
        return  # the common case: no walk
    stack = [value]
    while stack:
        node = stack.pop()
        children = node.values() if node.__class__ is dict else node
        for child in children:
            if node.__class__ is dict and child == NULL:
                raise BadRequestData(
                    f"{where}: urn:ngsi-ld:null cannot be a member of a Property value here"
                )
            if child.__class__ is dict or child.__class__ is list:
                stack.append(child)


def check_depth(where: str, value: Any, limit: int = MAX_VALUE_DEPTH) -> None:
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
    check = literal_check(literal_type)
    if check is not None and not check(value["@value"]):
        short = literal_type.removeprefix(_CORE_PREFIX)
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


def object_type(where: str, value: Any) -> Any:
    """A checked ``objectType``: a type name or IRI, or a non-empty list of them."""
    names = value if isinstance(value, list) else [value]
    if not names or not all(is_term(n) or is_iri(n) for n in names):
        raise BadRequestData(f"{where}: objectType must be a type name or a list of them")
    return value


def object_list(where: str, value: Any) -> list[str]:
    """The URIs of a ListRelationship's objectList (items are URIs or ``{"object": uri}``)."""
    if not isinstance(value, list):
        raise BadRequestData(f"{where}: objectList must be an array")
    out: list[str] = []
    for item in value:
        target: Any = item.get("object") if isinstance(item, dict) else item
        if not is_entity_id(target):
            raise BadRequestData(f"{where}: objectList item {item!r} is not a URI")
        out.append(target)
    return out
