"""Entity write semantics as pure functions (ETSI GS CIM 009 v1.9.1, clause 5.6).

Every operation is a *mutation builder*: it takes the already parsed, validated
and expanded request data plus the timestamp ``now`` and returns a function from
the current entity (``None`` if absent) to the new entity (``None`` deletes it),
the :data:`storage.base.Mutation` the store applies atomically.  The
functions never modify their inputs (the store may keep ``current`` as the
"before" state) and may be called more than once (a backend may retry).

Operations that report which attributes were written (5.6.2, 5.6.3) return an
:class:`AttrsMutation`: callable like any mutation, with the
:class:`UpdateResult` of its last call in ``.result``.

Entity-level fragments (append, update, merge, replace) are internal-form
entities: ``attrs`` plus optional ``type`` and ``scope``; their ``id`` is ignored
except by :func:`replace_entity`.  The single-attribute operations (5.6.4,
5.6.5, 5.6.19) live in :mod:`ngsi_ld.attribute_ops` and are re-exported here;
the batch operations are in :mod:`ngsi_ld.batch`.  Names in results are full
IRIs, as the store keeps them.

Choices where the spec is silent or loose (Orion-LD/Scorpio users' expectations):

- Timestamps: a written attribute instance keeps its ``createdAt`` and gets
  ``modifiedAt = now`` even when the value written equals the old one (a write is
  a modification, as in Orion-LD); sub-attributes equal to the old ones keep their
  stamps.  The entity gets ``modifiedAt = now`` whenever anything was written.
- The NGSI-LD Null (:data:`DELETE`) is accepted by update (5.6.2: deletes the
  matching instance), partial update (5.6.4: deletes a member, a sub-attribute,
  or the instance when it is the main member, 5.5.8) and merge (5.6.17: deletes
  an attribute, member, sub-attribute, member of an object value, the scope or
  expiresAt); create, append, replace and upsert reject it with BadRequestData
  (clause 5.5.4).
- Types: append (5.6.3), update (5.6.2), merge (5.6.17) and upsert-update add the
  fragment's types to the entity's (multi-typed entities, clause 4.16); replace
  (5.6.18) and upsert-replace replace them.
- Scope is handled like an attribute named ``scope``: update replaces it only
  if the entity has one (else it is reported in notUpdated); append replaces it,
  or with noOverwrite adds the fragment's scopes to the entity's (5.6.3.4); merge
  replaces it (JSON arrays are replaced by RFC 7396) or deletes it with
  ``urn:ngsi-ld:null``.
- expiresAt (4.22) of a fragment replaces the entity's; of an instance, it goes
  with the instance (update and append replace it, partial update and merge keep it).
- Merge (5.6.17) merges instances member by member, sub-attributes recursively
  and Property values that are JSON objects by RFC 7396 (5.5.12).  Partial
  attribute update (5.6.4) replaces each given sub-attribute and value whole.
- A fragment giving another attribute kind (``type``) drops the old kind's main
  member, so an instance never carries two main members.
- Replace entity (5.6.18) keeps the ``createdAt`` of instances that exist under
  the same name and datasetId.
- An update or append that writes nothing (every attribute in notUpdated)
  leaves the entity untouched (no new ``modifiedAt``); a merge always stamps
  ``modifiedAt``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from ngsi_ld.attribute_ops import delete_attribute, replace_attribute, update_attribute
from ngsi_ld.errors import AlreadyExists, BadRequestData
from ngsi_ld.instances import (
    DELETE,
    STAMPS,
    attrs_of,
    clone,
    dataset_label,
    find_instance,
    is_delete,
    merge_instance,
    reject_nulls,
    require_entity,
    restamp,
    restamp_owned,
    scalar_members,
    stamp_new,
    touch,
    writable_entity,
)
from ngsi_ld.model import KEEPS_CURRENT, Entity, Instance, Mutation, keeps_current

#: The attribute a mutation's last call wrote the usual way (:func:`_replaced_usual`:
#: the entity and its ``attrs`` shallow copies of the one it was given, that attribute
#: alone replaced by a new list of one new instance, ``modifiedAt`` set, every other
#: member the same object), else None: a store's writer may then tell what the write
#: changed from that attribute alone (storage/sqlite/usual_patch.py; issue 19).
USUAL = "usual_attribute"


@dataclass(slots=True)
class NotUpdated:
    """One entry of ``notUpdated`` (clause 5.2.19): an attribute and why it was not written."""

    attr: str
    reason: str


@dataclass(slots=True)
class UpdateResult:
    """The outcome of an attribute write (clause 5.2.18); names are full IRIs."""

    updated: list[str] = field(default_factory=list)
    not_updated: list[NotUpdated] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The UpdateResult body (names stay fully qualified, as clause 6.3.6 asks)."""
        return {
            "updated": list(self.updated),
            "notUpdated": [{"attributeName": n.attr, "reason": n.reason} for n in self.not_updated],
        }

    def add_updated(self, name: str) -> None:
        """Record ``name`` as written (once)."""
        if name not in self.updated:
            self.updated.append(name)


class AttrsMutation:
    """A mutation that also reports what it wrote: ``.result`` after each call.

    Each writes a copy of the entity it is given (:func:`writable_entity` or
    :func:`require_entity`), never the entity itself: it keeps current (KEEPS_CURRENT).
    """

    keeps_current = True

    def __init__(self, apply: Callable[[Entity | None, UpdateResult], Entity | None]) -> None:
        self._apply = apply
        self.result = UpdateResult()
        #: the attribute of the last call's usual write (see USUAL), else None
        self.usual_attribute: str | None = None

    def __call__(self, current: Entity | None) -> Entity | None:
        result = UpdateResult()
        self.usual_attribute = None
        new = self._apply(current, result)
        self.result = result
        return new


# A fragment's type and scope may be one string (read untyped: a compiled build
# checks a value against its annotation, here Entity's list[str]).
def _types(fragment: Entity) -> list[str]:
    types = cast(Any, fragment).get("type") or []
    return [types] if isinstance(types, str) else list(types)


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    out = list(first)
    out.extend(t for t in second if t not in out)
    return out


def _scope(fragment: Entity) -> list[str]:
    scope = cast(Any, fragment)["scope"]
    return [scope] if isinstance(scope, str) else list(scope)


def _add_types(entity: Entity, fragment: Entity) -> bool:
    """Add the fragment's entity types (clause 4.16); True if any was new."""
    # Any: the stored type as it is (a str too, where Python went on; compiled, the
    # TypedDict's list | None would raise TypeError)
    current = cast(Any, entity).get("type")
    if current.__class__ is list and not cast(Any, fragment).get("type"):
        return False  # the usual fragment of attributes only: nothing to add
    types = _union(current or [], _types(fragment))
    if types == (current or []):
        return False
    entity["type"] = types
    return True


def _set_expiry(entity: Entity, fragment: Entity) -> bool:
    """4.22: the fragment's expiresAt replaces the entity's (the NGSI-LD Null removes
    it); True if it changed."""
    if "expiresAt" not in fragment:
        return False
    expires = fragment["expiresAt"]
    if expires == DELETE:
        return entity.pop("expiresAt", None) is not None
    if entity.get("expiresAt") == expires:
        return False
    entity["expiresAt"] = expires
    return True


def _same_instance(instances: Any, instance: Any) -> Instance | None:
    # Any: an attribute's instances as stored or sent, read as Python reads them
    # (compiled, list[Instance] would raise TypeError before any check)
    index = find_instance(instances, instance.get("datasetId")) if instances else None
    return None if index is None else instances[index]


def stamp_entity(new: Entity, now: str, old: Entity | None = None, *,
                 owned: bool = False) -> Entity:
    """A copy of ``new`` stamped as written at ``now`` over ``old`` (None: created): the
    entity and its instances keep ``old``'s createdAt (same name and datasetId).

    ``owned``: the caller hands ``new`` over (built for this write, shared with
    nothing that outlives it): its instances are stamped in place, not copied first
    (over ``old``, in its own ``attrs`` and instance lists as well).
    """
    attrs_of(new)
    # one deep copy; the stamping below reuses its values
    copy = new if owned else clone(new)
    out: Entity = {k: v for k, v in copy.items()  # type: ignore[assignment]
                   if k not in STAMPS and k != "attrs"}
    out["createdAt"] = old.get("createdAt", now) if old else now
    out["modifiedAt"] = now
    # read as they are (compiled, a TypedDict's .get() checks its declared type)
    old_doc: Any = old or {}
    old_attrs: Any = old_doc.get("attrs") or {}
    if not old_attrs:  # a creation (or nothing kept): every instance stamped now
        out["attrs"] = {name: [restamp_owned(i, None, now) for i in instances]
                        for name, instances in (copy.get("attrs") or {}).items()}
        return out
    # the copy's own attrs and instance lists, stamped in place (a batch replace stamps
    # every attribute of every entity: no new dict and lists for them)
    copy_doc: Any = copy
    attrs: Any = copy_doc.get("attrs") or {}
    for name, instances in attrs.items():
        stamp_instances(instances, old_attrs.get(name) or [], now)
    out["attrs"] = attrs
    return out


def stamp_instances(instances: Any, before: Any, now: str) -> None:
    """The owned ``instances`` of an attribute stamped in place as written at ``now``
    over its instances ``before`` (each keeps the createdAt of the one of its datasetId),
    as :func:`stamp_entity` does for each attribute over an old entity."""
    if len(instances) == 1 and before.__class__ is list and len(before) == 1:
        # the usual attribute (one instance before and after): _same_instance inlined
        inst, prior = instances[0], before[0]
        same = prior if prior.get("datasetId") == inst.get("datasetId") else None
        instances[0] = restamp_owned(inst, same, now)
    else:
        instances[:] = [restamp_owned(i, _same_instance(before, i), now) for i in instances]


# 5.6.1 Create Entity
def create_entity(new: Entity, now: str, *, check_nulls: bool = True,
                  owned: bool = False, stamped: bool = False) -> Mutation:
    """5.6.1 Create Entity: refuse an existing id (AlreadyExists), stamp everything ``now``.

    ``check_nulls=False`` is for callers that already refused the NGSI-LD Null;
    ``owned=True`` for those that hand ``new`` over (see :func:`stamp_entity`);
    ``stamped=True`` for those that hand it over stamped already, as
    ``stamp_entity(new, now, owned=True)`` stamps it (``shapes.parse_checked``'s
    ``now``).
    """
    entity_id = new.get("id")
    if not isinstance(entity_id, str) or not entity_id:
        raise BadRequestData("the entity to create has no id")
    if check_nulls:
        reject_nulls(new, "create")
    if not stamped:
        new = stamp_entity(new, now, owned=owned)
    first = [new]

    def mutation(current: Entity | None) -> Entity | None:
        if current is not None:
            raise AlreadyExists(f"entity {entity_id} already exists")
        # The first call hands out the stamped copy itself; a retry gets a fresh copy.
        return first.pop() if first else clone(new)

    return keeps_current(mutation)


# 5.6.2 Update Entity Attributes
def apply_update(entity: Entity, fragment: Entity, now: str, result: UpdateResult) -> bool:
    """Apply, in place, an Update Attributes fragment (5.6.2.4 of v1.9.1).

    An instance with the same name and datasetId is replaced (its createdAt
    kept), a missing one appended; an NGSI-LD Null deletes the matching instance
    (reported in ``result.not_updated`` when there is none).  The fragment's types
    are added; its scope replaces the entity's if the entity has one, else it is
    ignored (and reported as not updated).  Returns True if anything was written.
    Edited in place: ``entity``, its ``attrs`` and the instance lists of the fragment's
    attributes, nothing inside them (what :func:`writable_entity` copies).
    """
    changed = False
    attrs = entity.setdefault("attrs", {})
    for name, instances in attrs_of(fragment).items():
        for inst in instances:
            dataset_id = inst.get("datasetId")
            existing = attrs.get(name) or []
            index = find_instance(existing, dataset_id)
            if is_delete(inst):
                if index is None:
                    reason = f"attribute has no instance with {dataset_label(dataset_id)}"
                    result.not_updated.append(NotUpdated(name, reason))
                    continue
                del existing[index]
                if not existing:
                    del attrs[name]
            elif index is None:
                attrs[name] = [*existing, stamp_new(inst, now)]
            else:
                existing[index] = restamp(inst, existing[index], now)
            result.add_updated(name)
            changed = True
    changed = _add_types(entity, fragment) or changed
    if "scope" in fragment:
        if "scope" in entity:
            entity["scope"] = _scope(fragment)
            result.add_updated("scope")
            changed = True
        else:  # "otherwise ignore it": reported, as not written
            result.not_updated.append(NotUpdated("scope", "entity has no scope"))
    return _set_expiry(entity, fragment) or changed


def update_attributes(entity_id: str, fragment: Entity, now: str) -> AttrsMutation:
    """5.6.2 Update Entity Attributes: instances replaced or appended, Nulls delete.

    Missing entity: ResourceNotFound.  Nothing written: the entity is returned as is.
    A usual write (:func:`_replaced_usual`) is told on the mutation (:data:`USUAL`).
    """
    names = tuple(attrs_of(fragment))

    def apply(current: Entity | None, result: UpdateResult) -> Entity | None:
        # the usual PATCH told on the writer, not on the event loop that built the mutation
        usual = _usual_instance(fragment, names) if current is not None else None
        if usual is not None and current is not None:
            quick = _replaced_usual(current, usual[0], usual[1], now)
            if quick is not None:
                result.updated.append(usual[0])
                mutation.usual_attribute = usual[0]  # the writer's lane may take it (USUAL)
                return quick
        entity = writable_entity(current, entity_id, names)
        if apply_update(entity, fragment, now, result):
            return touch(entity, now)
        return current

    mutation = AttrsMutation(apply)
    return mutation


def _usual_instance(fragment: Entity, names: tuple[str, ...]) -> tuple[str, Instance] | None:
    """The name and instance of a fragment of the usual PATCH (one attribute, one instance
    without datasetId, sub-attributes or stamps, of scalar members, no NGSI-LD Null
    (:func:`scalar_members`), nothing but ``attrs``), which :func:`_replaced_usual` may
    write; else None."""
    if len(names) != 1 or len(fragment) != 1:
        return None
    instances = cast(Any, fragment)["attrs"][names[0]]
    if len(instances) != 1:
        return None
    inst = instances[0]
    if "datasetId" in inst or "sub" in inst or "createdAt" in inst or "modifiedAt" in inst \
            or not scalar_members(inst):
        return None
    return names[0], inst


def _replaced_usual(current: Entity, name: str, inst: Instance, now: str) -> Entity | None:
    """5.6.2.4 for the usual PATCH (:func:`_usual_instance`) of an entity whose attribute
    ``name`` is one instance without datasetId and whose types are a list: what
    :func:`writable_entity` then :func:`apply_update` and :func:`touch` give, without
    their general steps (the usual PATCH of one attribute, on the store's writer: issue
    19); None for any other entity (the general way)."""
    attrs: Any = cast(Any, current).get("attrs")  # read untyped: its shape is checked here
    old = attrs.get(name) if attrs.__class__ is dict else None
    if old.__class__ is not list or len(old) != 1 or old[0].get("datasetId") is not None \
            or cast(Any, current).get("type").__class__ is not list:
        return None
    new = dict(inst)  # scalar members: a private copy, as restamp's clone makes it
    new["createdAt"] = old[0].get("createdAt", now)
    new["modifiedAt"] = now
    entity: dict[str, Any] = dict(current)
    written = entity["attrs"] = dict(attrs)
    written[name] = [new]
    entity["modifiedAt"] = now
    return cast(Entity, entity)


# 5.6.3 Append Entity Attributes
def apply_append(
    entity: Entity, fragment: Entity, now: str, result: UpdateResult, *, no_overwrite: bool
) -> bool:
    """Add, in place, the fragment's instances, types and scope to ``entity``.

    Existing instances are replaced unless ``no_overwrite`` (then reported in
    ``result.not_updated``).  Returns True if anything was written.  Edited in place
    as by :func:`apply_update`: ``entity``, its ``attrs``, the fragment's instance lists.
    """
    changed = False
    attrs = entity.setdefault("attrs", {})
    for name, instances in attrs_of(fragment).items():
        for inst in instances:
            dataset_id = inst.get("datasetId")
            existing = attrs.get(name) or []
            index = find_instance(existing, dataset_id)
            if index is None:
                attrs[name] = [*existing, stamp_new(inst, now)]
            elif no_overwrite:
                reason = f"{dataset_label(dataset_id)} exists and noOverwrite is set"
                result.not_updated.append(NotUpdated(name, reason))
                continue
            else:
                existing[index] = restamp(inst, existing[index], now)
            result.add_updated(name)
            changed = True
    changed = _add_types(entity, fragment) or changed
    if "scope" in fragment:
        # 5.6.3.4: without overwrite, the fragment's scopes are added to the entity's
        scope = _scope(fragment)
        if no_overwrite:
            scope = _union(entity.get("scope") or [], scope)
        if scope != entity.get("scope"):
            entity["scope"] = scope
            changed = True
        result.add_updated("scope")
    return _set_expiry(entity, fragment) or changed


def append_attributes(
    entity_id: str, fragment: Entity, now: str, *, no_overwrite: bool = False
) -> AttrsMutation:
    """5.6.3 Append Entity Attributes: add new attributes, replace existing unless noOverwrite.

    The fragment's types are added to the entity's.  Missing entity: ResourceNotFound.
    """
    reject_nulls(fragment, "append")
    names = tuple(attrs_of(fragment))

    def apply(current: Entity | None, result: UpdateResult) -> Entity | None:
        entity = writable_entity(current, entity_id, names)
        if apply_append(entity, fragment, now, result, no_overwrite=no_overwrite):
            return touch(entity, now)
        return current

    return AttrsMutation(apply)


# 5.6.6 Delete Entity
def delete_entity(entity_id: str) -> Mutation:
    """5.6.6 Delete Entity: the mutation returns None; missing entity: ResourceNotFound."""

    def mutation(current: Entity | None) -> Entity | None:
        require_entity(current, entity_id)
        return None

    return keeps_current(mutation)


# 5.6.17 Merge Entity (IETF RFC 7396 merge-patch at the attribute level)
def apply_merge(entity: Entity, fragment: Entity, now: str) -> None:
    """Merge ``fragment`` into ``entity`` in place (see :func:`merge_entity`)."""
    attrs = entity.setdefault("attrs", {})
    for name, instances in attrs_of(fragment).items():
        for inst in instances:
            existing = attrs.get(name) or []
            index = find_instance(existing, inst.get("datasetId"))
            if is_delete(inst):
                if index is not None:
                    del existing[index]
                    if not existing:
                        del attrs[name]
            elif index is None:
                # 5.6.17.4: an Attribute with no match (name and datasetId) is added as
                # given, its datasetId too (merge_instance keeps the one of the instance
                # merged into, and here there is none)
                added = merge_instance({}, inst, now, deep=True)
                if inst.get("datasetId") is not None:
                    added["datasetId"] = inst["datasetId"]
                attrs[name] = [*existing, added]
            else:
                existing[index] = merge_instance(existing[index], inst, now, deep=True)
    _add_types(entity, fragment)
    if "scope" in fragment:
        if cast(Any, fragment)["scope"] in (DELETE, [DELETE]):
            entity.pop("scope", None)
        else:
            entity["scope"] = _scope(fragment)
    _set_expiry(entity, fragment)


def merge_entity(entity_id: str, fragment: Entity, now: str) -> Mutation:
    """5.6.17 Merge Entity: attributes added or merged, NGSI-LD Null deletes.

    Instances are matched by datasetId; members of a matched instance are merged
    and its sub-attributes merged recursively; an NGSI-LD Null removes the
    attribute instance, member or sub-attribute (absent targets are ignored);
    types are added; scope replaced or, with the Null, removed.  Missing
    entity: ResourceNotFound.
    """
    attrs_of(fragment)

    def mutation(current: Entity | None) -> Entity | None:
        entity = require_entity(current, entity_id)
        apply_merge(entity, fragment, now)
        return touch(entity, now)

    return mutation


# 5.6.18 Replace Entity
def replaced_entity(entity_id: str, new: Entity, now: str, old: Entity, *,
                    owned: bool = False) -> Entity:
    """``old`` replaced by ``new`` as 5.6.18 does (what :func:`replace_entity`'s mutation
    returns for an existing ``old``, which is only read); ``owned`` as :func:`stamp_entity`."""
    replaced = stamp_entity(new, now, old, owned=owned)
    replaced["id"] = entity_id
    # read as they are (compiled, a TypedDict's .get() checks its declared type)
    replaced_doc: Any = replaced
    if not replaced_doc.get("type"):
        old_doc: Any = old
        replaced["type"] = clone(old_doc.get("type", []))
    return replaced


def replace_entity(
    entity_id: str, new: Entity, now: str, *, check_nulls: bool = True, owned: bool = False
) -> Mutation:
    """5.6.18 Replace Entity: types, scope and attributes replaced by ``new``'s.

    The entity's createdAt (and that of instances with the same name and
    datasetId) is kept.  ``new["id"]``, when given, must be ``entity_id``
    (BadRequestData).  Missing entity: ResourceNotFound.  ``owned``: the caller
    hands ``new`` over and calls the mutation once (see :func:`stamp_entity`).
    """
    if new.get("id", entity_id) != entity_id:
        raise BadRequestData(f"entity id {new.get('id')} does not match {entity_id}")
    if check_nulls:
        reject_nulls(new, "replace")

    def mutation(current: Entity | None) -> Entity | None:
        # Only read (never changed) here, so no private copy of it is needed.
        old = current if current is not None else require_entity(current, entity_id)
        return replaced_entity(entity_id, new, now, old, owned=owned)

    return keeps_current(mutation)


__all__ = [
    "DELETE",
    "KEEPS_CURRENT",
    "USUAL",
    "AttrsMutation",
    "Mutation",
    "NotUpdated",
    "UpdateResult",
    "append_attributes",
    "apply_append",
    "apply_merge",
    "apply_update",
    "create_entity",
    "delete_attribute",
    "delete_entity",
    "keeps_current",
    "merge_entity",
    "replace_attribute",
    "replace_entity",
    "replaced_entity",
    "stamp_entity",
    "stamp_instances",
    "update_attribute",
    "update_attributes",
]
