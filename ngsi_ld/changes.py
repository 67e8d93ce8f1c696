"""Change events computed from an entity's state before and after a write.

The subscriptions module (clause 5.8 notifications, 5.11 notification
triggers) consumes :class:`ChangeEvent`; :func:`diff` derives one from the
``before``/``after`` pair a store write returns, so every write path (single,
batch, temporal) reports changes the same way.

Choices:

- An attribute instance counts as updated when anything in it differs,
  including its ``modifiedAt``: the write operations stamp every instance they
  write, so an update that writes the same value is still an
  ``attributeUpdated`` (NGSI-LD notifies on updates, not only on value
  changes, as Orion-LD does).  Sub-attributes untouched by a write keep their
  stamps and do not count.
- The entity's own ``createdAt``/``modifiedAt`` are ignored: a write that
  changed no attribute, type or scope (an empty merge) is no event (None).
- An attribute is keyed by name: it is ``attributeCreated`` when it had no
  instance before, ``attributeDeleted`` when it has none after, and
  ``attributeUpdated`` when any of its instances (by datasetId) was added,
  removed or changed.
- A change of the types or of the scope alone gives ``entityUpdated`` with no
  attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ngsi_ld.model import Entity

Trigger = Literal["entityCreated", "entityUpdated", "entityDeleted"]
AttrTrigger = Literal["attributeCreated", "attributeUpdated", "attributeDeleted"]

ENTITY_CREATED: Trigger = "entityCreated"
ENTITY_UPDATED: Trigger = "entityUpdated"
ENTITY_DELETED: Trigger = "entityDeleted"
ATTRIBUTE_CREATED: AttrTrigger = "attributeCreated"
ATTRIBUTE_UPDATED: AttrTrigger = "attributeUpdated"
ATTRIBUTE_DELETED: AttrTrigger = "attributeDeleted"


@dataclass(slots=True)
class ChangeEvent:
    """One entity write as subscriptions see it (clause 5.11 notification triggers).

    ``attributes`` maps every attribute name (full IRI) the write touched to
    what happened to it.
    """

    tenant: str
    entity_id: str
    before: Entity | None
    after: Entity | None
    trigger: Trigger
    attributes: dict[str, AttrTrigger] = field(default_factory=dict)
    #: where the write was committed in a shared store's history, for a write another
    #: broker process made (storage.sharing.FeedItem.mark); None for a local write
    mark: int | None = None


def _by_dataset(instances: Any) -> dict[Any, Any]:
    if not isinstance(instances, list):
        return {}
    return {inst.get("datasetId"): inst for inst in instances if isinstance(inst, dict)}


def _attrs(entity: Entity | None) -> dict[str, Any]:
    attrs = (entity or {}).get("attrs")
    return attrs if isinstance(attrs, dict) else {}


def attribute_changes(before: Entity | None, after: Entity | None) -> dict[str, AttrTrigger]:
    """Attribute name -> trigger for every attribute that differs between the two states."""
    old, new = _attrs(before), _attrs(after)
    changes: dict[str, AttrTrigger] = {}
    for name in [*old, *(n for n in new if n not in old)]:
        had, has = bool(old.get(name)), bool(new.get(name))
        if not had and has:
            changes[name] = ATTRIBUTE_CREATED
        elif had and not has:
            changes[name] = ATTRIBUTE_DELETED
        # Equal lists are equal by datasetId too: only a difference needs the
        # order-insensitive comparison.
        elif had and old[name] != new[name] and _differ(old[name], new[name]):
            changes[name] = ATTRIBUTE_UPDATED
    return changes


def _differ(old: Any, new: Any) -> bool:
    """Whether two unequal instance lists differ by datasetId (order aside)."""
    if (isinstance(old, list) and isinstance(new, list) and len(old) == len(new) == 1
            and isinstance(old[0], dict) and isinstance(new[0], dict)):
        # One instance each (the usual case): the lists are unequal, so the two
        # instances are, whatever their datasetIds.
        return True
    return _by_dataset(old) != _by_dataset(new)


def diff(tenant: str, before: Entity | None, after: Entity | None) -> ChangeEvent | None:
    """The change from ``before`` to ``after`` (None: absent), or None if nothing changed."""
    if before is None and after is None:
        return None
    entity_id = str((after if after is not None else before or {}).get("id", ""))
    attributes = attribute_changes(before, after)
    if before is None:
        trigger: Trigger = ENTITY_CREATED
    elif after is None:
        trigger = ENTITY_DELETED
    else:
        same_entity = all(before.get(k) == after.get(k) for k in ("id", "type", "scope"))
        if same_entity and not attributes:
            return None
        trigger = ENTITY_UPDATED
    return ChangeEvent(tenant, entity_id, before, after, trigger, attributes)


__all__ = [
    "ATTRIBUTE_CREATED",
    "ATTRIBUTE_DELETED",
    "ATTRIBUTE_UPDATED",
    "ENTITY_CREATED",
    "ENTITY_DELETED",
    "ENTITY_UPDATED",
    "AttrTrigger",
    "ChangeEvent",
    "Trigger",
    "attribute_changes",
    "diff",
]
