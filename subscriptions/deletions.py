"""What a notification says about deleted attributes and entities (clauses 5.8.6, 4.5.x).

Pure, on the internal form.  A deleted attribute instance is notified as an
instance of the same kind whose main member is the NGSI-LD Null (clause 5.2.1):

================  ===============================================
kind              main member of the deleted instance
================  ===============================================
Property          ``"value": "urn:ngsi-ld:null"``
GeoProperty       ``"value": "urn:ngsi-ld:null"``
Relationship      ``"object": "urn:ngsi-ld:null"``
LanguageProperty  ``"languageMap": {"@none": "urn:ngsi-ld:null"}``
VocabProperty     ``"vocab": "urn:ngsi-ld:null"``
JsonProperty      ``"json": "urn:ngsi-ld:null"``
ListProperty      ``"valueList": ["urn:ngsi-ld:null"]``
ListRelationship  ``"objectList": ["urn:ngsi-ld:null"]``
================  ===============================================

with the ``createdAt`` and ``modifiedAt`` of the instance and ``deletedAt`` (system
attributes: rendered with ``sysAttrs`` only).  Choices:

* an attribute deleted as a whole (every instance) is one deleted instance, of the
  kind of its default instance (else of its first); ``datasetId`` is kept when the
  attribute had no default instance;
* an instance deleted by ``datasetId`` while others remain is a deleted instance
  with that ``datasetId``, next to the remaining ones (trigger ``attributeDeleted``);
* a deleted entity is ``id``, ``type``, its ``createdAt``/``modifiedAt`` (shown with
  ``sysAttrs``) and ``deletedAt``; when the subscription watches ``attributeDeleted``
  or asks for ``showChanges``, the attributes it had (its watched ones, if it names
  any) are there too, deleted: the deletion of an entity deletes its attributes.
"""

from __future__ import annotations

from typing import Any

from ngsi_ld.changes import ChangeEvent
from ngsi_ld.instances import DELETE, MAIN_MEMBER
from ngsi_ld.model import Entity, Instance

_NULL_MAIN: dict[str, Any] = {
    "LanguageProperty": {"@none": DELETE},
    "ListProperty": [DELETE],
    "ListRelationship": [DELETE],
}


def deleted_instance(source: Instance, deleted_at: str) -> Instance:
    """The NGSI-LD Null instance that stands for ``source``, deleted at ``deleted_at``."""
    kind = source.get("type", "Property")
    if kind not in MAIN_MEMBER:
        kind = "Property"
    out: Instance = {"type": kind, MAIN_MEMBER[kind]: _NULL_MAIN.get(kind, DELETE)}
    for member in ("datasetId", "createdAt", "modifiedAt"):
        if member in source:
            out[member] = source[member]
    out["deletedAt"] = deleted_at
    return out


def deleted_attribute(instances: list[Instance], deleted_at: str) -> list[Instance]:
    """An attribute deleted as a whole: one deleted instance (see the module's choices)."""
    if not instances:
        return [{"type": "Property", "value": DELETE, "deletedAt": deleted_at}]
    default = [inst for inst in instances if "datasetId" not in inst]
    return [deleted_instance((default or instances)[0], deleted_at)]


def removed_instances(before: list[Instance], after: list[Instance]) -> list[Instance]:
    """The instances of ``before`` whose datasetId no longer has an instance ``after``."""
    remaining = {inst.get("datasetId") for inst in after}
    return [inst for inst in before if inst.get("datasetId") not in remaining]


def _instances(entity: Entity | None, name: str) -> list[Instance]:
    found = ((entity or {}).get("attrs") or {}).get(name)
    return found if isinstance(found, list) else []


def lost_an_instance(event: ChangeEvent, name: str) -> bool:
    """Whether the update of attribute ``name`` deleted one of its instances (by datasetId)."""
    return bool(removed_instances(_instances(event.before, name), _instances(event.after, name)))


def with_deletions(event: ChangeEvent, deleted_at: str) -> Entity:
    """The entity after ``event`` with its deleted attributes and instances as Nulls.

    ``event.after`` itself when nothing was deleted (the common case costs nothing).
    """
    after = event.after or {}
    added: dict[str, list[Instance]] = {}
    for name, what in event.attributes.items():
        if what == "attributeDeleted":
            added[name] = deleted_attribute(_instances(event.before, name), deleted_at)
        elif what == "attributeUpdated":
            now = _instances(after, name)
            gone = removed_instances(_instances(event.before, name), now)
            if gone:
                added[name] = [*now, *(deleted_instance(inst, deleted_at) for inst in gone)]
    if not added:
        return after
    return {**after, "attrs": {**after.get("attrs", {}), **added}}


def deleted_entity(event: ChangeEvent, deleted_at: str, *, attributes: bool,
                   only: frozenset[str] | None = None) -> Entity:
    """The internal form of a deleted entity (``deletedAt`` is added by the renderer).

    ``attributes``: with its attributes, deleted (those named in ``only``, if given).
    """
    before = event.before or {}
    out: Entity = {"id": event.entity_id}
    if before.get("type"):
        out["type"] = before["type"]
    for stamp in ("createdAt", "modifiedAt"):
        if stamp in before:
            out[stamp] = before[stamp]
    attrs: dict[str, list[Instance]] = {}
    if attributes:
        for name, instances in (before.get("attrs") or {}).items():
            if instances and (only is None or name in only):
                attrs[name] = deleted_attribute(instances, deleted_at)
    out["attrs"] = attrs
    return out


__all__ = ["deleted_attribute", "deleted_entity", "deleted_instance", "lost_an_instance",
           "removed_instances", "with_deletions"]
