"""The writer's walk over a written entity's attributes: the index decision and the history.

Two questions the writer asks of every entity written from ``before`` to
``after``: which attributes' rows of the query indexes may change
(:func:`changed_names`, :mod:`.index`), and which attribute instances its
history records (``ngsi_ld.temporal.history.attribute_changes``).  A batch
upsert of replaced Streetlights asked both of each of their 18 attributes in
two walks; :func:`walk` answers both in one, sharing the lookups of each
attribute before and after and the tests of its shape (benchmarks/README.md,
the section on the one walk).

A batch upsert's replacement of an entity it finds (``ngsi_ld.batch``'s mutation
hands it over, :data:`~ngsi_ld.batch.REPLACEMENT`) is stamped in the same pass
(:func:`replace_walk`): the usual attribute stamped as ``stamp_entity`` stamps it and
compared at once, every other attribute by the usual functions; the same pass tells
whether the history's pack check (``history_sql.check_internal``) accepts its
instances, so that the pack is not checked in a second pass.

The index decision: an attribute's rows are compared only when it is not the
same object before and after; one instance each (the usual attribute) is
compared on its kind, value and main member as JSON (``1`` and ``True`` index
differently), anything else instance by instance.
"""

from __future__ import annotations

from typing import Any

import orjson

from ngsi_ld.instances import MAIN_MEMBER, STAMPS, attrs_of, clone, restamp_owned
from ngsi_ld.operations import replaced_entity, stamp_instances
from ngsi_ld.temporal.history import Change, attribute_changes, instance_changes, removed

from ..base import Entity
from .history_sql import stamps_instant

__all__ = ["changed_names", "replace_walk", "same_indexed", "usual_names", "walk"]

#: the classes of JSON values compared with ``==`` alone
_SCALARS = (str, int, float, type(None))
#: an attribute the entity before the write did not have
_ABSENT: Any = object()


def same_indexed(old: Any, new: Any) -> bool:
    """Whether two instances give the same index rows: same kind, value and main member."""
    if old.__class__ is not dict or new.__class__ is not dict:
        return bool(old == new)
    kind = old.get("type")
    if kind != new.get("type") or not _same_json(old.get("value"), new.get("value")):
        return False
    member = MAIN_MEMBER.get(kind, "value") if isinstance(kind, str) else "value"
    return member == "value" or _same_json(old.get(member), new.get(member))


def _usual(name: str, a: list[Any], b: list[Any], changed: set[str],
           changes: list[Change] | None) -> bool:
    """The usual attribute, one instance object ``a[0]`` before and ``b[0]`` after (a
    batch replace compares every attribute), in one call: its name added to ``changed``
    if its index rows may differ (:func:`same_indexed`, a scalar value compared at once),
    its history's change appended to ``changes`` (unless None).  Whether that change,
    if any, is one a pack's check accepts as to its kind (``history_sql._check_kind``:
    a known kind and its main member, told here from the kind just read; no observedAt
    or deletedAt, so that ``history_sql.stamps_instant`` tells the rest)."""
    x, y = a[0], b[0]
    kind = y.get("type")
    main = MAIN_MEMBER.get(kind) if isinstance(kind, str) else None
    xv, yv = x.get("value"), y.get("value")
    if kind != x.get("type") or xv.__class__ is not yv.__class__ or not (
            xv == yv if xv.__class__ in _SCALARS else _same_json(xv, yv)) or (
            main is not None and main != "value" and not _same_json(x.get(main), y.get(main))):
        changed.add(name)
    if changes is None:
        return True
    if x.get("datasetId") != y.get("datasetId"):
        changes.extend(instance_changes(name, a, b))
        return False
    # attribute_changes' one instance of one datasetId: a write stamps what it writes,
    # so another modifiedAt tells it without comparing
    if x.get("modifiedAt") != y.get("modifiedAt") or x != y:
        changes.append((name, y, False))
        return main is not None and main in y and "observedAt" not in y \
            and "deletedAt" not in y
    return True


def _same_json(old: Any, new: Any) -> bool:
    """Equal as JSON: Python's ``1 == True`` and ``[1] == [True]`` are not (True is
    not indexed, 1 is)."""
    if old.__class__ is not new.__class__:
        return False
    if old.__class__ in _SCALARS:
        return bool(old == new)
    try:
        return bool(old == new) and orjson.dumps(old) == orjson.dumps(new)
    except TypeError:  # not plain JSON (an integer beyond 64 bits): recompute
        return False


def changed_names(before: Entity | None, after: Entity | None) -> set[str]:
    """The attributes whose index rows may differ between ``before`` and ``after``.

    Most writes change a value or two, or only the timestamps: the rows of the
    other attributes are neither computed nor compared.
    """
    return _walk(before, after, None)


def usual_names(name: str, a: list[Any], b: list[Any]) -> set[str]:
    """:func:`changed_names` of a write that replaced the attribute ``name`` alone (its
    one instance object ``a[0]`` before, a new one ``b[0]`` after, every other attribute
    the same object): ``{name}`` if its index rows may differ, else empty."""
    changed: set[str] = set()
    _usual(name, a, b, changed, None)
    return changed


def walk(before: Entity | None, after: Entity | None) -> tuple[set[str], list[Change]]:
    """:func:`changed_names` and ``list(attribute_changes(before, after))`` in one walk."""
    changes: list[Change] = []
    return _walk(before, after, changes), changes


def _walk(before: Entity | None, after: Entity | None, changes: list[Change] | None) -> set[str]:
    """The changed names; the history's changes appended to ``changes`` unless None."""
    # read as they are, through Any (compiled, the TypedDict's .get() is checked against
    # dict[str, list[Instance]] and so is each value iterated: TypeError where Python
    # goes on); checked below, then typed dict[str, Any]
    old_doc: Any = before
    new_doc: Any = after
    old_read: Any = old_doc.get("attrs") if old_doc is not None else None
    new_read: Any = new_doc.get("attrs") if new_doc is not None else None
    if changes is not None and (old_read.__class__ is not dict or not old_read
                                or new_read.__class__ is not dict):
        # a creation (the history's own walk over the new attributes), or no attributes
        changes.extend(attribute_changes(before, after))
        changes = None
    old: dict[str, Any] = old_read if isinstance(old_read, dict) else {}
    new: dict[str, Any] = new_read if isinstance(new_read, dict) else {}
    # a replace or an update keeps the names (a comparison builds no set)
    changed = set() if old.keys() == new.keys() else old.keys() ^ new.keys()
    if not old:
        return changed
    if changes is not None and changed:  # the history's deletions come last, in old's order
        gone = [(name, a) for name, a in old.items() if name not in new]
    else:
        gone = []
    for name, b in new.items():
        a = old.get(name, _ABSENT)
        if a is b:  # the same object: an attribute the write did not touch
            continue
        if a is _ABSENT:  # a new attribute (already in changed)
            if changes is not None:
                changes.extend(instance_changes(name, None, b))
            continue
        _attribute(name, a, b, changed, changes)
    if changes is not None:
        for name, a in gone:
            changes.extend(removed(name, a))
    return changed


def _attribute(name: str, a: Any, b: Any, changed: set[str],
               changes: list[Change] | None) -> None:
    """An attribute the write rewrote, ``a`` before and ``b`` after, compared: its name
    added to ``changed`` if its index rows may differ, its history's changes appended to
    ``changes`` (unless None)."""
    if a.__class__ is list and b.__class__ is list and len(a) == 1 == len(b):
        x, y = a[0], b[0]
        if x.__class__ is dict and y.__class__ is dict:
            _usual(name, a, b, changed, changes)
            return
    _compare(name, a, b, changed, changes)


def _compare(name: str, a: Any, b: Any, changed: set[str], changes: list[Change] | None) -> None:
    """An attribute other than the usual one (one instance before and after) compared
    instance by instance: its name added to ``changed`` if its index rows may differ, its
    history's changes appended to ``changes`` (unless None)."""
    if changes is not None:
        changes.extend(instance_changes(name, a, b))
    a, b = (a if isinstance(a, list) else [a]), (b if isinstance(b, list) else [b])
    if len(a) != len(b) or not all(map(same_indexed, a, b)):
        changed.add(name)


def replace_walk(entity_id: str, new: Entity, now: str,
                 old: Entity) -> tuple[Entity, set[str], list[Change], int | None]:
    """``replaced_entity(entity_id, new, now, old, owned=True)`` and :func:`walk` of
    ``old`` and it, the usual attribute stamped and compared in one pass (a batch upsert
    replaces every attribute of the entities it finds; three passes over them were
    ~2.3 µs an attribute).  ``new`` is owned: stamped in place, as the usual path does,
    and what it raises is raised (ngsi_ld's checks, in their order).

    Fourth: the least ``t`` of the history's changes when each is an instance of the
    usual attribute that the check of its pack accepts (:func:`_usual`,
    ``history_sql.stamps_instant``: told where its kind is read and its stamps set, the
    pack needs no second pass over them), else None."""
    # read as they are, through Any (compiled, the TypedDict's .get() and each value
    # iterated are checked: TypeError where Python goes on); typed once checked
    old_doc: Any = old
    new_doc: Any = new
    old_read: Any = old_doc.get("attrs")
    new_read: Any = new_doc.get("attrs")
    if old_read.__class__ is not dict or not old_read or new_read.__class__ is not dict:
        # nothing to keep (stamped as created) or no attributes: the usual passes
        replaced = replaced_entity(entity_id, new, now, old, owned=True)
        return (replaced, *walk(old, replaced), None)
    old_attrs: dict[str, Any] = old_read
    attrs: dict[str, Any] = new_read
    for instances in attrs.values():  # its shape checked first, as stamp_entity does:
        # attrs_of's checks, the usual attribute (one instance object) told at once
        if instances.__class__ is not list or len(instances) != 1 \
                or instances[0].__class__ is not dict:
            attrs_of(new)
            break
    # the entity's own members stamped as replaced_entity stamps them, in its order of
    # keys (the stored bytes), its attributes stamped below
    # (read through Any: compiled, a TypedDict's .get() is checked against its type)
    after_doc: dict[str, Any] = {k: v for k, v in new_doc.items()
                                 if k not in STAMPS and k != "attrs"}
    after_doc["createdAt"] = old_doc.get("createdAt", now)
    after_doc["modifiedAt"] = now
    after_doc["attrs"] = attrs
    after_doc["id"] = entity_id
    if not after_doc.get("type"):
        after_doc["type"] = clone(old_doc.get("type", []))
    after: Entity = after_doc  # type: ignore[assignment]
    changes: list[Change] = []
    changed = set() if old_attrs.keys() == attrs.keys() else old_attrs.keys() ^ attrs.keys()
    least: int | None = None
    checked = True  # every change so far an instance the pack's check accepts (least)
    created: Any = _ABSENT  # the last createdAt it accepted
    for name, b in attrs.items():
        a = old_attrs.get(name, _ABSENT)
        if a is _ABSENT:  # a new attribute: its instances stamped as created
            stamp_instances(b, [], now)
            changes.extend(instance_changes(name, None, b))
            checked = False
            continue
        if len(b) == 1 and a.__class__ is list and len(a) == 1 and (x := a[0]).__class__ is dict:
            # the usual attribute: stamp_entity's and _walk's shortcuts in one
            y = b[0]
            same = x.get("datasetId") == y.get("datasetId")
            if "sub" in y or "createdAt" in y or "modifiedAt" in y:
                # stamped as stamp_instances stamps it (its sub-attributes compared)
                y = b[0] = restamp_owned(y, x if same else None, now)
            else:
                y["createdAt"] = x.get("createdAt", now) if same and x else now
                y["modifiedAt"] = now
            # _usual(name, a, b, changed, changes) inline (a call and the lookups of what
            # was just read were a fifth of the pass): y's datasetId is x's when same,
            # its modifiedAt now.  The index test below is _usual's, copied on purpose:
            # one function for both cost +3.4% of the writer's instructions per replaced
            # Streetlight (callgrind, benchmarks/README.md 2026-12-06 14:50); the one-pass
            # property (tests/test_sqlite_upsert_writer.py) fails when the copies differ
            kind = y.get("type")
            main = MAIN_MEMBER.get(kind) if isinstance(kind, str) else None
            xv, yv = x.get("value"), y.get("value")
            if kind != x.get("type") or xv.__class__ is not yv.__class__ or not (
                    xv == yv if xv.__class__ in _SCALARS else _same_json(xv, yv)) or (
                    main is not None and main != "value"
                    and not _same_json(x.get(main), y.get(main))):
                changed.add(name)
            if not same:
                changes.extend(instance_changes(name, a, b))
                checked = False
                continue
            if x.get("modifiedAt") != now or x != y:
                changes.append((name, y, False))
                if main is None or main not in y or "observedAt" in y or "deletedAt" in y:
                    checked = False
                    continue
            if checked and y["createdAt"] != created:  # its t: the stamps checked
                at = stamps_instant(y["createdAt"], now)
                if at is None:
                    checked = False
                else:
                    created = y["createdAt"]
                    least = at if least is None or at < least else least
            continue
        stamp_instances(b, a or [], now)  # any other attribute: both steps as usual
        count = len(changes)
        _attribute(name, a, b, changed, changes)
        checked = checked and len(changes) == count
    for name, a in old_attrs.items():  # the history's deletions come last, in old's order
        if name not in attrs:
            changes.extend(removed(name, a))
            checked = False
    # every instance stamped now: least is now's, unless nothing is recorded
    return after, changed, changes, least if checked and changes else None
