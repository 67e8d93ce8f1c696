"""Attribute instances in the internal form: NGSI-LD Null, timestamps, merging.

Shared by the write operations (``ngsi_ld.operations``, ``ngsi_ld.batch``) and
the change computation (``ngsi_ld.changes``).  Pure functions; inputs are never
modified, results are fresh copies (but :func:`writable_entity`'s, which shares
what a write of some attributes leaves as it was).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from math import isfinite
from typing import Any, TypeVar, cast

import orjson

from ngsi_ld.errors import BadRequestData, ResourceNotFound
from ngsi_ld.model import Entity, Instance

_Json = TypeVar("_Json")

#: The NGSI-LD Null (clause 5.2.1): as the main member of an instance, or as a
#: member's value, it asks merge/update operations to delete the target.
DELETE = "urn:ngsi-ld:null"

#: Main member of each attribute kind (clause 4.5 and docs/architecture.md).
MAIN_MEMBER: dict[str, str] = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
MAIN_MEMBERS = frozenset(MAIN_MEMBER.values())
_KIND_MEMBERS = MAIN_MEMBERS | {"objectType"}
STAMPS = ("createdAt", "modifiedAt")


#: the classes of JSON scalars a shallow copy copies as :func:`clone` does
_SCALARS = (str, int, bool, type(None))


def scalar_members(instance: Instance) -> bool:
    """Whether every member of ``instance`` is a JSON scalar that :func:`clone` keeps as it
    is (a finite float: its round trip makes infinities null), none the NGSI-LD Null: a
    shallow copy of it is then what a clone gives (the usual attribute of a write)."""
    for value in instance.values():
        if value.__class__ not in _SCALARS:
            if value.__class__ is not float or not isfinite(value):
                return False
        elif value == DELETE:
            return False
    return True


def clone(value: _Json) -> _Json:
    """A deep copy of JSON data (the internal form is JSON): orjson, ~20x copy.deepcopy."""
    try:
        copied: _Json = orjson.loads(orjson.dumps(value))
        return copied
    except TypeError:  # not plain JSON (e.g. an integer beyond 64 bits): the slow way
        return copy.deepcopy(value)


_NULLS = (DELETE, [DELETE], {"@none": DELETE})


def is_delete(instance: Any) -> bool:
    """True if ``instance`` is an NGSI-LD Null: its main member is ``urn:ngsi-ld:null``.

    The languageMap form is ``{"@none": "urn:ngsi-ld:null"}`` (clause 5.2.1).
    """
    if instance == DELETE:
        return True
    if not isinstance(instance, dict):
        return False
    member = MAIN_MEMBER.get(instance.get("type"))  # type: ignore[arg-type]
    if member is not None:
        return instance.get(member, None) in _NULLS if member in instance else False
    return any(member in instance and instance[member] in _NULLS for member in MAIN_MEMBERS)


def strip_stamps(instance: Any) -> Any:
    """A copy of an instance without createdAt/modifiedAt at any depth, for comparisons."""
    if not isinstance(instance, dict):
        return instance
    out = {k: v for k, v in instance.items() if k not in STAMPS and k != "sub"}
    if isinstance(instance.get("sub"), dict):
        out["sub"] = {name: strip_stamps(sub) for name, sub in instance["sub"].items()}
    return out


def find_instance(instances: list[Any], dataset_id: object) -> int | None:
    """Index of the instance with ``dataset_id`` (None: the default instance), or None.

    ``object``: the datasetId as an instance holds it, checked or not (a model function
    may be handed an unchecked one; compiled, a narrower annotation raises TypeError)."""
    for i, inst in enumerate(instances):
        if inst.get("datasetId") == dataset_id:
            return i
    return None


def dataset_label(dataset_id: object) -> str:
    """Human wording of an instance selector for error details."""
    return "the default instance" if dataset_id is None else f"datasetId {dataset_id}"


def attrs_of(fragment: Entity) -> dict[str, list[Instance]]:
    """The ``attrs`` of an internal-form entity or fragment, checked for shape."""
    # read untyped: the shape is what this checks (a compiled build trusts annotations)
    attrs = cast(Any, fragment).get("attrs") or {}
    if not isinstance(attrs, dict):
        raise BadRequestData("attributes must be an object of attribute name to instances")
    for name, instances in attrs.items():
        if not isinstance(instances, list):
            raise BadRequestData(f"attribute {name} must be a list of attribute instances")
        for instance in instances:
            if not isinstance(instance, dict):
                raise BadRequestData(f"attribute {name} must be a list of attribute instances")
    return attrs


def check_instance(name: str, instance: Any) -> Instance:
    """``instance`` if it is an attribute instance (a JSON object), else BadRequestData."""
    if not isinstance(instance, dict):
        raise BadRequestData(f"attribute {name} must be a JSON object")
    return instance


_NULL_BYTES = DELETE.encode()


def reject_nulls(fragment: Entity, operation: str) -> None:
    """Raise BadRequestData if the fragment uses the NGSI-LD Null (clause 5.2.1)."""
    attrs = attrs_of(fragment)
    try:
        if _NULL_BYTES not in orjson.dumps(fragment):
            return  # no string anywhere is the Null: nothing to look for
    except TypeError:
        pass  # not plain JSON: look instance by instance
    for name, instances in attrs.items():
        for inst in instances:
            reject_instance_null(name, inst, operation)
    if cast(Any, fragment).get("scope") in (DELETE, [DELETE]):  # a list, or the Null
        raise BadRequestData(f"{operation} cannot take urn:ngsi-ld:null as scope")


def reject_instance_null(name: str, instance: Instance, operation: str) -> None:
    """Raise BadRequestData if the instance or one of its sub-attributes is an NGSI-LD Null."""
    subs = instance.get("sub") or {}
    if is_delete(instance) or any(is_delete(s) for s in subs.values()):
        raise BadRequestData(f"{operation} cannot take urn:ngsi-ld:null (attribute {name})")


def restamp(new: Instance, old: Instance | None, now: str) -> Instance:
    """A copy of ``new``, written over ``old`` (None: a new instance), with timestamps.

    createdAt comes from ``old`` when there is one; modifiedAt is ``now``.
    Sub-attributes that existed keep createdAt, and keep modifiedAt as well when
    they did not change.
    """
    return restamp_owned(clone(new), old, now)


def restamp_owned(new: Instance, old: Instance | None, now: str) -> Instance:
    """As :func:`restamp` for an instance the caller owns: its values are reused, not copied.

    One deep copy of a whole entity then this on each instance is the same as
    :func:`restamp` on each, at a fraction of the cost.
    """
    if "sub" not in new and "createdAt" not in new and "modifiedAt" not in new:
        # The common case (a parsed instance): stamp the caller's copy in place.
        new["createdAt"] = old.get("createdAt", now) if old else now
        new["modifiedAt"] = now
        return new
    out = {k: v for k, v in new.items() if k not in STAMPS and k != "sub"}
    out["createdAt"] = old.get("createdAt", now) if old else now
    out["modifiedAt"] = now
    subs = new.get("sub")
    if isinstance(subs, dict):
        old_subs = (old or {}).get("sub") or {}
        stamped_subs: dict[str, Instance] = {}
        for name, sub in subs.items():
            before = old_subs.get(name)
            stamped = restamp_owned(check_instance(name, sub), before, now)
            if before is not None and strip_stamps(before) == strip_stamps(sub):
                stamped["modifiedAt"] = before.get("modifiedAt", now)
            stamped_subs[name] = stamped
        out["sub"] = stamped_subs
    return out


def stamp_new(instance: Instance, now: str) -> Instance:
    """A copy of a new instance with createdAt/modifiedAt = now on it and every sub-attribute."""
    return restamp(instance, None, now)


def merge_instance(old: Instance, fragment: Instance, now: str, *, deep: bool) -> Instance:
    """Merge ``fragment``'s members into ``old`` (5.6.4 partial update, 5.6.17 merge).

    A member set to :data:`DELETE` is removed, and so is a sub-attribute that is
    an NGSI-LD Null.  Other sub-attributes are merged recursively when ``deep``
    (merge) or replaced whole (partial attribute update).  A fragment of another
    kind drops the old kind's main member.
    """
    new_kind = fragment.get("type")
    if (new_kind is None or new_kind == old.get("type")) and "sub" not in fragment \
            and "sub" not in old and scalar_members(fragment) and scalar_members(old):
        # the usual instance and fragment (no sub-attribute, Null, object or kind change):
        # the steps below without their copies (issue 19)
        out = {k: v for k, v in old.items() if k not in STAMPS}
        for member, value in fragment.items():
            if member not in STAMPS and member != "datasetId":
                out[member] = value
        return restamp_owned(out, old, now)
    merged = clone({k: v for k, v in old.items() if k not in STAMPS})
    if new_kind is not None and new_kind != old.get("type"):
        for member in _KIND_MEMBERS:
            merged.pop(member, None)
    kind = new_kind if new_kind is not None else old.get("type")
    for member, value in fragment.items():
        if member in STAMPS or member in ("sub", "datasetId"):
            continue
        if value == DELETE and member not in MAIN_MEMBERS:
            merged.pop(member, None)
        elif deep and member == "value" and kind == "Property" and value.__class__ is dict:
            # 5.5.12: a merge goes into JSON objects representing a Property value
            # (RFC 7396): members merged, the NGSI-LD Null removes one
            before = merged.get("value")
            merged["value"] = merge_patch(before if before.__class__ is dict else {}, value)
        else:
            merged[member] = clone(value)
    subs: dict[str, Instance] = dict(merged.get("sub") or {})
    for name, sub in (fragment.get("sub") or {}).items():
        check_instance(name, sub)
        if is_delete(sub):
            subs.pop(name, None)
        elif deep and name in subs:
            subs[name] = merge_instance(subs[name], sub, now, deep=True)
        else:
            subs[name] = clone(sub)
    if subs:
        merged["sub"] = subs
    else:
        merged.pop("sub", None)
    return restamp_owned(merged, old, now)


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """IETF RFC 7396 on JSON objects, the NGSI-LD Null standing for null (5.5.12): a copy
    of ``target`` with ``patch``'s members merged in, objects recursively."""
    out = clone(target)
    for key, value in patch.items():
        if value == DELETE:
            out.pop(key, None)
        elif value.__class__ is dict:
            before = out.get(key)
            out[key] = merge_patch(before if before.__class__ is dict else {}, value)
        else:
            out[key] = clone(value)
    return out


def existing_entity(current: Entity | None, entity_id: str) -> Entity:
    """``current`` itself, or ResourceNotFound naming ``entity_id`` when there is none."""
    if current is None:
        raise ResourceNotFound(f"entity {entity_id} does not exist")
    return current


def require_entity(current: Entity | None, entity_id: str) -> Entity:
    """A private copy of the current entity, or ResourceNotFound naming ``entity_id``."""
    return clone(existing_entity(current, entity_id))


def writable_entity(current: Entity | None, entity_id: str, names: Iterable[str]) -> Entity:
    """The current entity made ready for a write of the attributes ``names`` only, or
    ResourceNotFound naming ``entity_id``.

    The entity and its ``attrs`` (if any) are new dicts and the instance lists of ``names`` new
    lists; every instance, value and other attribute is ``current``'s own, shared.  A
    write that replaces (never edits in place) what it changes leaves ``current``
    untouched at the price of a few shallow copies, where :func:`require_entity` copies
    the whole entity; the attributes it does not write stay the same objects, which
    the store's and the history's comparisons of before and after skip at once.
    """
    current = existing_entity(current, entity_id)
    entity = dict(current)
    attrs = current.get("attrs")
    if attrs is not None:
        attrs = entity["attrs"] = dict(attrs)
        for name in names:
            instances = attrs.get(name)
            if instances is not None:
                attrs[name] = list(instances)
    return cast(Entity, entity)


def touch(entity: Entity, now: str) -> Entity:
    """Set the entity's modifiedAt to ``now`` (something in it was written)."""
    entity["modifiedAt"] = now
    return entity


__all__ = [
    "DELETE",
    "MAIN_MEMBER",
    "STAMPS",
    "attrs_of",
    "check_instance",
    "dataset_label",
    "find_instance",
    "is_delete",
    "merge_instance",
    "merge_patch",
    "reject_instance_null",
    "reject_nulls",
    "require_entity",
    "restamp",
    "restamp_owned",
    "scalar_members",
    "stamp_new",
    "strip_stamps",
    "touch",
    "writable_entity",
]
