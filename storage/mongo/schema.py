"""The MongoDB document of an entity, and the indexes the backend creates.

An entity in the internal expanded form (docs/architecture.md) is stored as::

    {
      "_id": "urn:ngsi-ld:T:1",              # the entity id (the unique _id index)
      "type": ["https://.../T"],             # type IRIs
      "scope": ["/a/b"],                     # when present
      "createdAt": "...", "modifiedAt": "...",
      "attrs": {"<encoded IRI>": [instance, ...]},   # keys encoded (mongo_keys) at any depth
      "attrNames": ["https://.../p", ...],   # attribute IRIs, plain (indexed, discovery)
      "attrMeta": [{"name": IRI, "kinds": ["Property"], "count": 1}, ...],  # discovery
      "geo": {"<encoded IRI>": [GeoJSON, ...]},  # valid GeoProperty values (2dsphere)
      "version": 3,                          # +1 on every write (optimistic concurrency)
      "writeId": "9f0c...",                  # random per write: who won a race
      "expiry": 1767225600000,               # transient entities: when the first part
                                             #   expires, ms (clause 4.22; sparse index)
      "origin": "host:pid:rnd"               # the writing process, when processes share
    }                                        #   the store (storage/mongo/feed.py)

Every LanguageProperty node also holds ``"%lv"``: the strings of its map.

See docs/mongodb.md for the whole schema.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from ngsi_ld.expiry import earliest_expiry
from ngsi_ld.query.geo import entity_shape

from ..base import Entity
from .keys import decode_doc, decode_key, encode_doc, encode_key

#: top-level fields the backend adds; everything else is the entity's own
META_FIELDS = ("_id", "attrNames", "attrMeta", "geo", "version", "writeId", "expiry", "origin")
#: the field of the time (ms) the first part of a transient entity expires at
EXPIRY = "expiry"
#: the field naming the process that wrote a document (entities, records, contexts)
ORIGIN = "origin"

#: a field no encoded name can be (a '%' not followed by an escape code): the values of
#: a LanguageProperty's map, so that a q term can compare them without knowing the languages
LANGUAGE_VALUES = "%lv"

#: indexes of every tenant database's ``entities`` collection: (keys, options)
ENTITY_INDEXES: tuple[tuple[list[tuple[str, Any]], dict[str, Any]], ...] = (
    ([("type", 1)], {"name": "type"}),
    ([("attrNames", 1)], {"name": "attrNames"}),
    ([("createdAt", 1)], {"name": "createdAt"}),
    ([("modifiedAt", 1)], {"name": "modifiedAt"}),
    ([(EXPIRY, 1)], {"name": EXPIRY, "sparse": True}),
)


def geo_index(attr: str) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """The ``2dsphere`` index over one GeoProperty's geometries (created on first query)."""
    path = "geo." + encode_key(attr)
    return [(path, "2dsphere")], {"name": "geo:" + encode_key(attr)}


def _instances(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else []


def to_document(entity: Entity, version: int) -> dict[str, Any]:
    """The document stored for ``entity``; TypeError if it is not JSON (nothing is stored).

    The entity is first copied through JSON, so that what is stored is exactly
    what a JSON round trip keeps, and a value that is not JSON fails here.
    """
    encoded = orjson.dumps(entity)
    plain: Entity = orjson.loads(encoded)
    if not isinstance(plain.get("id"), str):
        raise TypeError("an entity to store needs a string id")
    attrs = plain.get("attrs")
    attrs = attrs if isinstance(attrs, dict) else {}
    normalized = {name: _instances(value) for name, value in attrs.items()}
    doc: dict[str, Any] = {"_id": plain["id"]}
    for key, value in plain.items():
        if key not in ("id", "attrs"):
            doc[encode_key(key)] = encode_doc(value)
    if "attrs" in plain:
        doc["attrs"] = {
            encode_key(n): [_with_language_values(i) for i in encode_doc(insts)]
            for n, insts in normalized.items()
        }
    doc["attrNames"] = sorted(normalized)
    doc["attrMeta"] = [
        {
            "name": name,
            "kinds": sorted(
                {i["type"] for i in insts if isinstance(i, dict) and isinstance(i.get("type"), str)}
            ),
            "count": len(insts),
        }
        for name, insts in sorted(normalized.items())
    ]
    geo: dict[str, list[Any]] = {}
    for name, insts in normalized.items():
        shapes = [
            {"type": i["value"]["type"], "coordinates": i["value"]["coordinates"]}
            for i in insts
            if isinstance(i, dict) and i.get("type") == "GeoProperty" and _indexable(i.get("value"))
        ]
        if shapes:
            geo[encode_key(name)] = shapes
    doc["geo"] = geo
    doc["version"] = version
    doc["writeId"] = uuid.uuid4().hex
    # clause 4.22: most entities are not transient, which one byte search tells
    expires = earliest_expiry(plain) if encoded.find(b'"expiresAt"') >= 0 else None
    if expires is not None:
        doc[EXPIRY] = expires
    return doc


def _with_language_values(node: Any) -> Any:
    """Add LANGUAGE_VALUES to every LanguageProperty node (instance or sub-attribute)."""
    if not isinstance(node, dict):
        return node
    if node.get("type") == "LanguageProperty" and isinstance(node.get("languageMap"), dict):
        # keys were encoded, values not: the strings are the map's values, as the evaluator
        items = [
            s for v in node["languageMap"].values() for s in (v if isinstance(v, list) else [v])
        ]
        node[LANGUAGE_VALUES] = [
            x["@value"] if isinstance(x, dict) and "@value" in x else x
            for item in items
            for x in (item if isinstance(item, list) else [item])
        ]
    subs = node.get("sub")
    if isinstance(subs, dict):
        for sub in subs.values():
            _with_language_values(sub)
    return node


def _without_language_values(node: Any) -> Any:
    if isinstance(node, dict):
        node.pop(LANGUAGE_VALUES, None)
        subs = node.get("sub")
        if isinstance(subs, dict):
            for sub in subs.values():
                _without_language_values(sub)
    return node


def _indexable(value: Any) -> bool:
    shape = entity_shape(value)
    return shape is not None and bool(shape.is_valid)


def from_document(doc: dict[str, Any]) -> Entity:
    """The entity a stored document holds (a new object)."""
    entity: Entity = {"id": doc["_id"]}
    for key, value in doc.items():
        if key in META_FIELDS:
            continue
        entity[decode_key(key)] = decode_doc(value)  # type: ignore[literal-required]
    attrs = entity.get("attrs")
    if isinstance(attrs, dict):
        for instances in attrs.values():
            for instance in instances if isinstance(instances, list) else [instances]:
                _without_language_values(instance)
    return entity


__all__ = [
    "ENTITY_INDEXES",
    "LANGUAGE_VALUES",
    "META_FIELDS",
    "ORIGIN",
    "from_document",
    "geo_index",
    "to_document",
]
