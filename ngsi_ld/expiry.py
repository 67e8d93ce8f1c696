"""Transient entities and attributes (ETSI GS CIM 009 v1.9.1, clause 4.22).

``expiresAt`` is a system temporal Property "at which a certain Entity, Property or
Relationship shall become invalid and may be automatically removed".  In the
internal form it is a member of the entity, of an attribute instance or of a
sub-attribute, a UTC DateTime kept as the client wrote it.

This module answers, on plain internal-form entities:

- :func:`earliest_expiry`: when the first part of an entity expires (the stores
  index it, the sweeper waits for it);
- :func:`without_expired`: the entity as it is valid at a given time (reads use
  it so that nothing expired is ever served, swept or not);
- :func:`expire`: the mutation that removes what expired (the sweeper writes it
  through the store, so that the deletions reach subscriptions as deletions).

Times are milliseconds since the Unix epoch.  The expiry of an instance removes
that instance (the attribute when it was the last one); the expiry of a
sub-attribute removes the sub-attribute; the expiry of the entity removes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.model import Entity
from ngsi_ld.operations import keeps_current
from ngsi_ld.timeutil import parse_datetime

__all__ = ["EXPIRES_AT", "earliest_expiry", "expire", "expiry_millis", "without_expired"]

EXPIRES_AT = "expiresAt"


@lru_cache(maxsize=4096)
def expiry_millis(text: str) -> int | None:
    """The instant of an ``expiresAt`` value in milliseconds (None if it is not a date-time)."""
    try:
        return int(parse_datetime(text).timestamp() * 1000)
    except BadRequestData:
        return None


def _at(holder: Mapping[str, Any]) -> int | None:
    text = holder.get(EXPIRES_AT)
    return expiry_millis(text) if isinstance(text, str) else None


def _earliest_in(node: dict[str, Any], found: int | None) -> int | None:
    at = _at(node) if EXPIRES_AT in node else None
    if at is not None and (found is None or at < found):
        found = at
    subs = node.get("sub")
    if subs.__class__ is dict:
        for sub in subs.values():
            if sub.__class__ is dict and (EXPIRES_AT in sub or "sub" in sub):
                found = _earliest_in(sub, found)
    return found


def earliest_expiry(entity: Mapping[str, Any] | None) -> int | None:
    """When the first part of ``entity`` (itself, an instance, a sub-attribute) expires."""
    if entity is None:
        return None
    found = _at(entity) if EXPIRES_AT in entity else None
    attrs = entity.get("attrs")
    if attrs.__class__ is not dict:
        return found
    # called on every write: only the nodes that may hold an expiry are looked into
    for instances in attrs.values():
        if instances.__class__ is not list:
            continue
        for instance in instances:
            if instance.__class__ is dict and (EXPIRES_AT in instance or "sub" in instance):
                found = _earliest_in(instance, found)
    return found


def _expired(holder: Mapping[str, Any], now: int) -> bool:
    at = _at(holder) if EXPIRES_AT in holder else None
    return at is not None and at <= now


def _live_instance(instance: dict[str, Any], now: int) -> dict[str, Any] | None:
    """The instance without its expired sub-attributes; None if it expired itself."""
    if _expired(instance, now):
        return None
    subs = instance.get("sub")
    if subs.__class__ is not dict:
        return instance
    kept = {}
    for name, sub in subs.items():
        live = _live_instance(sub, now) if sub.__class__ is dict else sub
        if live is not None:
            kept[name] = live
    if len(kept) == len(subs) and all(kept[n] is subs[n] for n in kept):
        return instance
    out = {k: v for k, v in instance.items() if k != "sub"}
    if kept:
        out["sub"] = kept
    return out


def without_expired(entity: Entity, now: int) -> Entity | None:
    """``entity`` as valid at ``now``: None if it expired, else without its expired parts.

    ``entity`` itself is returned when nothing in it expired (the common case:
    callers can test identity); otherwise a new object sharing the live parts.
    """
    if _expired(entity, now):
        return None
    if earliest_expiry(entity) is None:
        return entity
    attrs = entity.get("attrs") or {}
    kept: dict[str, list[dict[str, Any]]] = {}
    changed = False
    for name, instances in attrs.items():
        live = [i for i in (_live_instance(x, now) for x in instances) if i is not None]
        changed = changed or len(live) != len(instances) or any(
            a is not b for a, b in zip(live, instances, strict=False)
        )
        if live:
            kept[name] = live
    if not changed:
        return entity
    return {**entity, "attrs": kept}


def expire(now_ms: int, now: str) -> Callable[[Entity | None], Entity | None]:
    """The mutation that removes from an entity what expired at ``now_ms``.

    The entity's modifiedAt becomes ``now`` when something was removed; an
    entity with nothing expired (a write raced the sweep) is returned as it is.
    """

    def mutation(current: Entity | None) -> Entity | None:
        if current is None:
            return None
        kept = without_expired(current, now_ms)
        if kept is None or kept is current:
            return kept
        return {**kept, "modifiedAt": now}

    # it builds a new entity and never changes the one it is given
    return keeps_current(mutation)
