"""Batch entity operations (ETSI GS CIM 009 v1.8, clauses 5.6.7 to 5.6.10 and 5.6.20).

One mutation builder per operation; the HTTP layer checks the batch with
:func:`check_batch`, then calls
``store.modify_many(tenant, [(entity["id"], builder(entity, now)), ...])`` and
turns the outcomes into a BatchOperationResult.  Each entity succeeds or fails
on its own.

Choices where the spec is silent:

- Duplicate ids inside one batch: create and delete reject the batch
  (BadRequestData naming the id); upsert, update and merge combine the
  duplicates in order into one fragment, as Orion-LD does: types are added,
  a later instance (same name and datasetId) replaces an earlier one (merge:
  a later instance's members override the earlier's), a later scope wins.
- Batch update (5.6.9) is Append Entity Attributes (5.6.3) on each entity, so
  an absent entity fails with ResourceNotFound; with noOverwrite existing
  attributes are kept and reported (the entity then fails in the
  BatchOperationResult, as its UpdateResult would have a notUpdated entry).
- ``?options=update`` and ``?options=replace`` (FIWARE tutorials, IoT Agents,
  ngsi-go ``update entities --replace``, the NGSIv2 actionType of the same
  names): on upsert, ``update`` appends with overwrite (types added) and
  ``replace`` (the default) replaces the entity as 5.6.18 does, keeping
  createdAt; on update, ``update`` is the default behaviour and ``replace``
  replaces each existing entity as 5.6.18 does (absent: ResourceNotFound).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from ngsi_ld.errors import BadRequestData, InvalidRequest
from ngsi_ld.instances import clone, find_instance, reject_nulls, require_entity, touch
from ngsi_ld.model import KEEPS_CURRENT, Entity, Instance, Mutation
from ngsi_ld.operations import (
    AttrsMutation,
    UpdateResult,
    apply_append,
    create_entity,
    delete_entity,
    merge_entity,
    replace_entity,
    replaced_entity,
    stamp_entity,
)

UPSERT_MODES = ("replace", "update")
#: the method of a batch upsert's mutation that hands its replacement of an existing
#: entity to a caller that computes it (:meth:`_Upsert.replacement`)
REPLACEMENT = "replacement"
UPDATE_MODES = ("update", "replace")


# 5.6.7 Batch Entity Creation
def batch_create_mutation(new: Entity, now: str, *, owned: bool = False,
                          check_nulls: bool = True) -> Mutation:
    """One entity of a batch create: as 5.6.1 (AlreadyExists if the id is taken).

    ``owned``: the caller hands ``new`` over (see ``operations.stamp_entity``);
    ``check_nulls=False``: ``new`` is known to be free of the NGSI-LD Null."""
    return create_entity(new, now, owned=owned, check_nulls=check_nulls)


# 5.6.8 Batch Entity Upsert
def batch_upsert_mutation(new: Entity, now: str, mode: str = "replace", *,
                          owned: bool = False, check_nulls: bool = True) -> Mutation:
    """One entity of a batch upsert: created if absent, else replaced or updated per ``mode``.

    ``mode`` is the ``options`` value, ``"replace"`` (default) or ``"update"``
    (InvalidRequest otherwise).  ``owned``: the caller hands ``new`` over (parsed
    for this write, read by nothing else afterwards): the first call stamps it in
    place instead of a deep copy of it (``operations.stamp_entity``).
    ``check_nulls=False``: ``new`` is known to be free of the NGSI-LD Null (as
    ``shapes.parse_checked`` tells), which is then not looked for again.
    """
    if mode not in UPSERT_MODES:
        raise InvalidRequest(f"upsert options must be 'replace' or 'update', not {mode!r}")
    entity_id = _id_of(new)
    if check_nulls:
        reject_nulls(new, "upsert")
    return _Upsert(entity_id, new, now, mode == "replace", owned)


class _Upsert:
    """The mutation :func:`batch_upsert_mutation` gives: as ``create_entity`` when there
    is no entity, else as ``replace_entity`` (or Append Entity Attributes with overwrite).

    One object rather than closures: a batch builds one per entity on the event loop,
    and the closures of the operations were some twenty objects per entity that the
    cyclic collector tracks while the batch is in flight (benchmarks/README.md).
    """

    __slots__ = ("_entity_id", "_new", "_now", "_owned", "_replace")

    def __init__(self, entity_id: str, new: Entity, now: str, replace: bool,
                 owned: bool) -> None:
        self._entity_id = entity_id
        self._new: Entity | None = new
        self._now = now
        self._replace = replace
        self._owned = owned

    def __call__(self, current: Entity | None) -> Entity | None:
        # the first call stamps an owned entity in place; a retry starts from a copy of it
        owned, self._owned = self._owned, False
        new, now = self._new, self._now
        if new is None:
            raise RuntimeError("the entity of this upsert was handed over (replacement)")
        if current is None:  # 5.6.1: stamped as created
            return stamp_entity(new, now, owned=owned)
        if self._replace:  # 5.6.18, the current entity only read
            return replaced_entity(self._entity_id, new, now, current, owned=owned)
        entity = clone(current)
        if apply_append(entity, new, now, UpdateResult(), no_overwrite=False):
            return touch(entity, now)
        return current

    def replacement(self, current: Entity | None) -> tuple[str, Entity, str] | None:
        """(entity id, new, now) when this call on ``current`` would be the first and
        replace it by an owned ``new``: what ``replaced_entity(*it, current, owned=True)``
        returns is then the call's result, which the caller computes (the SQLite writer
        stamps and compares each attribute in one pass); None otherwise (the call as
        usual).  Given, the entity is the caller's: the mutation lets go of it, so that
        the caller's thread may free it once written (the batch's parsed entities were
        freed by the event loop after the batch, cold: benchmarks/README.md, slcut), and
        it cannot be called again (its one caller, the SQLite writer, never does: a
        write job runs once)."""
        new = self._new
        if current is None or not self._replace or not self._owned or new is None:
            return None
        self._owned = False
        self._new = None
        return self._entity_id, new, self._now


setattr(_Upsert, KEEPS_CURRENT, True)  # it never changes the entity it is given


# 5.6.9 Batch Entity Update
def batch_update_mutation(
    new: Entity, now: str, *, no_overwrite: bool = False, mode: str = "update"
) -> Mutation:
    """One entity of a batch update of an existing entity (ResourceNotFound if absent).

    ``mode`` ``"update"`` (the default): Append Entity Attributes (5.6.3); the
    mutation is an :class:`AttrsMutation` whose ``result`` lists the attributes
    ``no_overwrite`` kept.  ``"replace"``: the entity is replaced as 5.6.18 does.
    """
    if mode not in UPDATE_MODES:
        raise InvalidRequest(f"update options must be 'update' or 'replace', not {mode!r}")
    entity_id = _id_of(new)
    reject_nulls(new, "update")
    if mode == "replace":
        return replace_entity(entity_id, new, now, check_nulls=False)

    def apply(current: Entity | None, result: UpdateResult) -> Entity | None:
        entity = require_entity(current, entity_id)
        if apply_append(entity, new, now, result, no_overwrite=no_overwrite):
            return touch(entity, now)
        return current

    return AttrsMutation(apply)


# 5.6.10 Batch Entity Delete
def batch_delete_mutation(entity_id: str) -> Mutation:
    """One entity of a batch delete: as 5.6.6 (ResourceNotFound if absent)."""
    return delete_entity(entity_id)


# 5.6.20 Batch Entity Merge
def batch_merge_mutation(new: Entity, now: str) -> Mutation:
    """One entity of a batch merge: as 5.6.17 Merge Entity."""
    return merge_entity(_id_of(new), new, now)


def _id_of(entity: Any) -> str:
    entity_id = entity.get("id") if isinstance(entity, dict) else entity
    if not isinstance(entity_id, str) or not entity_id:
        raise BadRequestData("every entity of a batch must have an id")
    return entity_id


def _combine_instances(earlier: Instance, later: Instance, *, merge: bool) -> Instance:
    if not merge:
        return clone(later)
    combined = {**clone(earlier), **clone(later)}
    if "sub" in earlier or "sub" in later:
        combined["sub"] = {**earlier.get("sub", {}), **later.get("sub", {})}
    return combined


def combine_fragments(earlier: Entity, later: Entity, *, merge: bool = False) -> Entity:
    """Two fragments for one entity as one, ``later`` winning (see the module docstring)."""
    out = clone(earlier)
    types = list(out.get("type") or [])
    types.extend(t for t in later.get("type") or [] if t not in types)
    if types:
        out["type"] = types
    if "scope" in later:
        out["scope"] = clone(later["scope"])
    attrs = out.setdefault("attrs", {})
    for name, instances in (later.get("attrs") or {}).items():
        existing = attrs.setdefault(name, [])
        for inst in instances:
            index = find_instance(existing, inst.get("datasetId"))
            if index is None:
                existing.append(clone(inst))
            else:
                existing[index] = _combine_instances(existing[index], inst, merge=merge)
    return out


def check_items(items: Any, max_size: int) -> list[Any]:
    """The elements of a batch body, which must be a non-empty JSON array of at most
    ``max_size`` elements, none of them null (5.6.7.4: BadRequestData for the whole
    request).  Other bad elements fail one by one, not here."""
    if not isinstance(items, list):
        raise BadRequestData("the body of a batch operation must be a JSON array")
    if not items:
        raise BadRequestData("a batch must contain at least one element")
    if len(items) > max_size:
        raise BadRequestData(f"batch of {len(items)} elements exceeds the maximum of {max_size}")
    if any(item is None for item in items):
        raise BadRequestData("a batch must not contain null elements")
    return items


def check_batch(
    entities: Sequence[Any],
    max_size: int,
    *,
    duplicates: Literal["reject", "combine", "merge"] = "reject",
) -> list[Any]:
    """Check a batch and return the entities (or ids, for delete) to apply, in order.

    Rejects (BadRequestData) an empty batch, one of more than ``max_size``
    entities, an entity without id, and duplicate ids when ``duplicates`` is
    ``"reject"`` (create, delete).  ``"combine"`` (upsert, update) and
    ``"merge"`` (merge) fold duplicates into the first occurrence with
    :func:`combine_fragments`.
    """
    if not isinstance(entities, Sequence) or isinstance(entities, str | bytes):
        raise BadRequestData("a batch must be a JSON array")
    if not entities:
        raise BadRequestData("a batch must contain at least one entity")
    if len(entities) > max_size:
        raise BadRequestData(f"batch of {len(entities)} entities exceeds the maximum of {max_size}")
    position: dict[str, int] = {}
    out: list[Any] = []
    for entity in entities:
        entity_id = _id_of(entity)
        if entity_id not in position:
            position[entity_id] = len(out)
            out.append(entity)
        elif duplicates == "reject":
            raise BadRequestData(f"entity {entity_id} appears more than once in the batch")
        else:
            index = position[entity_id]
            out[index] = combine_fragments(out[index], entity, merge=duplicates == "merge")
    return out


__all__ = [
    "REPLACEMENT",
    "UPDATE_MODES",
    "UPSERT_MODES",
    "batch_create_mutation",
    "batch_delete_mutation",
    "batch_merge_mutation",
    "batch_update_mutation",
    "batch_upsert_mutation",
    "check_batch",
    "check_items",
    "combine_fragments",
]
