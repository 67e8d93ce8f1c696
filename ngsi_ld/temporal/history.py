"""History from writes: what a committed write adds to the temporal evolution.

Clause 4.5.6 to 4.5.8 and 5.5.x: every change made through the normal entity API
(create, update, append, merge, replace, batch, delete attribute, delete entity,
expiry) is recorded, so the temporal API sees the whole life of an Entity.  The
service layer calls :func:`history_of_write` with the Entity before and after the
write (the internal form, as the store committed it) and the write's time.

What is recorded:

- Every attribute instance of ``after`` (by attribute and datasetId) that is new or
  differs from its ``before`` in anything, its stamps included: the write operations
  stamp each instance they write, so an update writing the same value again is
  still a new observation (a sensor reporting 21 degrees twice).  Untouched
  instances are not recorded again.
- Every instance of ``before`` that ``after`` no longer has (an attribute or one
  datasetId deleted, the whole Entity deleted or expired): a deletion record (4.5.7)
  whose value is the NGSI-LD Null in its kind's shape and whose only time is
  ``deletedAt``, the time of the write.  A deletion is not a modification: it is
  found by ``timeproperty=deletedAt`` (ETSI 020_17), never in an observedAt or
  modifiedAt window (ETSI 422_07_03 expects the values alone there).  It keeps the
  ``expiresAt`` of the instance it deletes, so the history of a transient
  attribute disappears with it (4.22, ETSI 422_07_02).
- The Scope (4.5.6) when it is set or changes: a Property instance whose value is
  the scope list and whose ``observedAt`` is "a copy of the modifiedAt" of the
  change; when it is removed, a deletion record whose value is ``[]`` (the ETSI
  suite's reading, 020_19 and 020_20).
- The Entity itself (:class:`EntityRecord`): its types, createdAt, modifiedAt, and
  ``deletedAt`` when the write deleted it.

A write that changed nothing recordable (an empty merge) gives no instances; the
Entity record still carries the new modifiedAt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeGuard

from ngsi_ld.temporal.model import (
    SCOPE,
    EntityRecord,
    History,
    Instance,
    InstanceIds,
    deletion_value,
    from_internal,
)

__all__ = ["WRITE_TIME", "Change", "Recorder", "attribute_changes", "deletion", "entity_record",
           "history_of_write", "instance_changes", "live_record", "recorder_at", "removed",
           "scope_change", "scope_instance"]

Entity = Mapping[str, Any]


#: A recorded change of one attribute instance: (attribute, the instance in the internal
#: form, whether it was deleted: then the instance is the one ``before`` had)
Change = tuple[str, Mapping[str, Any], bool]
#: The attribute a recorder made by :func:`recorder_at` carries: its write time.  A store
#: that finds it may record :func:`attribute_changes` itself, in its own encoding,
#: instead of calling the recorder for Instances (the same history, fewer objects).
WRITE_TIME = "write_time"
Recorder = Callable[[Entity | None, Entity | None, InstanceIds], History | None]


def recorder_at(now: str) -> Recorder:
    """What every write at ``now`` records (4.5.6 to 4.5.8): :func:`history_of_write`,
    marked with :data:`WRITE_TIME`."""

    def record(before: Entity | None, after: Entity | None,
               new_id: InstanceIds) -> History | None:
        return history_of_write(before, after, now, new_id)

    setattr(record, WRITE_TIME, now)
    return record


def history_of_write(
    before: Entity | None, after: Entity | None, now: str, new_id: InstanceIds
) -> History | None:
    """What the write from ``before`` to ``after`` (None: absent) at ``now`` records.

    None when both are None (nothing existed, nothing was written).  ``new_id``
    gives the instanceId of each recorded instance.
    """
    record = entity_record(before, after, now)
    if record is None:
        return None
    instances = [
        deletion(name, inst, now, new_id()) if deleted else from_internal(name, inst, new_id())
        for name, inst, deleted in attribute_changes(before, after)
    ]
    scope = scope_change(before, after, now, new_id)
    if scope is not None:
        instances.append(scope)
    return History(record, tuple(instances))


def entity_record(before: Entity | None, after: Entity | None, now: str) -> EntityRecord | None:
    """The Entity record of the write from ``before`` to ``after`` at ``now`` (None:
    neither exists)."""
    if after is not None:
        return EntityRecord(*live_record(after, now))
    if before is None:
        return None
    return EntityRecord(str(before.get("id", "")), tuple(before.get("type") or ()),
                        before.get("createdAt"), now, now)


def live_record(after: Entity, now: str) -> tuple[str, tuple[str, ...], Any, Any]:
    """(id, types, createdAt, modifiedAt) of the Entity record of a write that leaves
    ``after`` (:func:`entity_record`, whose deletedAt is then None)."""
    return (str(after.get("id", "")), tuple(after.get("type") or ()), after.get("createdAt"),
            after.get("modifiedAt", now))


def _attrs(entity: Entity | None) -> Mapping[str, Any]:
    attrs = (entity or {}).get("attrs")
    return attrs if _is_mapping(attrs) else {}


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # the internal form holds plain dicts: skip the ABC check for them (once an instance)
    return type(value) is dict or isinstance(value, Mapping)


def _by_dataset(instances: Any) -> dict[str | None, Mapping[str, Any]]:
    if not isinstance(instances, list):
        return {}
    return {inst.get("datasetId"): inst for inst in instances if _is_mapping(inst)}


def attribute_changes(before: Entity | None, after: Entity | None) -> Iterator[Change]:
    """The attribute instances the write from ``before`` to ``after`` records, in the
    order their instanceIds are given (see the module docstring)."""
    old, new = _attrs(before), _attrs(after)
    if not old:
        # a creation (a load's every write): every instance is new, none is deleted;
        # the last instance of a datasetId wins, as in _by_dataset
        for name, instances in new.items():
            if type(instances) is list and len(instances) == 1:
                if _is_mapping(instances[0]):
                    yield name, instances[0], False
                continue
            for inst in _by_dataset(instances).values():
                yield name, inst, False
        return
    for name, instances in new.items():
        previous = old.get(name)
        if previous is instances:
            continue  # an attribute the write did not touch, shared with the state before
        if (type(previous) is list and type(instances) is list and len(previous) == 1
                and len(instances) == 1 and type(was := previous[0]) is dict
                and type(inst := instances[0]) is dict
                and was.get("datasetId") == inst.get("datasetId")):
            # the usual attribute (a batch replace, a PATCH, one untouched): one instance
            # of the same datasetId before and after, recorded if they differ.  A write
            # stamps what it writes, so another modifiedAt tells it without comparing
            # the values (a replaced Streetlight compared each value twice, here and in
            # the store's index decision).
            if was.get("modifiedAt") != inst.get("modifiedAt") or was != inst:
                yield name, inst, False
            continue
        yield from instance_changes(name, previous, instances)
    for name, instances in old.items():
        if name not in new:
            yield from removed(name, instances)


def instance_changes(name: str, previous: Any, instances: Any) -> Iterator[Change]:
    """What :func:`attribute_changes` records of the attribute ``name`` that a write took
    from ``previous`` (None: absent) to ``instances``, instance by instance."""
    if previous == instances:
        return  # an attribute of several instances the write did not touch
    was, now_has = _by_dataset(previous), _by_dataset(instances)
    for dataset_id, inst in now_has.items():
        if was.get(dataset_id) != inst:
            yield name, inst, False
    for dataset_id, inst in was.items():
        if dataset_id not in now_has:
            yield name, inst, True


def removed(name: str, instances: Any) -> Iterator[Change]:
    """The deletion records of the attribute ``name`` a write removed (``instances``)."""
    for inst in _by_dataset(instances).values():
        yield name, inst, True


def deletion(name: str, inst: Mapping[str, Any], now: str, instance_id: str) -> Instance:
    """4.5.7: the record of a deleted instance: the NGSI-LD Null, its datasetId,
    deletedAt the time of the deletion, and its expiresAt if it had one."""
    kind = str(inst.get("type", "Property"))
    expires = inst.get("expiresAt")
    return Instance(
        attribute=name,
        instance_id=instance_id,
        kind=kind,
        value=deletion_value(kind),
        dataset_id=inst.get("datasetId"),
        deleted_at=now,
        members={} if expires is None else {"expiresAt": expires},
    )


def _scope(entity: Entity | None) -> list[str]:
    scope = (entity or {}).get("scope")
    if isinstance(scope, str):
        return [scope]
    return list(scope) if isinstance(scope, list) else []


def scope_change(
    before: Entity | None, after: Entity | None, now: str, new_id: InstanceIds
) -> Instance | None:
    old, new = _scope(before), _scope(after)
    if old == new:
        return None
    if not new:
        # 4.5.6 and ETSI 020_19: a removed scope is recorded with the value []
        return Instance(SCOPE, new_id(), "Property", [], deleted_at=now)
    return scope_instance(new, now, new_id())


def scope_instance(scope: list[str], now: str, instance_id: str,
                   observed_at: str | None = None) -> Instance:
    """4.5.6: a Scope as a temporal Property instance: its value the scope, and
    "the observedAt sub-Property ... set as a copy of the modifiedAt" (``now``)
    unless the client gave one (``observed_at``, the temporal API)."""
    return Instance(
        attribute=SCOPE,
        instance_id=instance_id,
        kind="Property",
        value=list(scope),
        observed_at=observed_at if observed_at is not None else now,
        created_at=now,
        modified_at=now,
    )
