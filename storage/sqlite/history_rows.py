"""The history of entity writes as instance rows, encoded straight from the entities.

What :func:`ngsi_ld.temporal.history_of_write` records, in the columns of
``temporal_instances`` (:func:`.history_sql.encode`), for the writes of
:mod:`.writes`: when the recorder is the standard one (it carries its write
time, :data:`~ngsi_ld.temporal.history.WRITE_TIME`), the changed attribute
instances are encoded from the internal form without building an
:class:`~ngsi_ld.temporal.Instance` for each (measured on a batch upsert of
21-attribute Streetlights: the Instances and their encoding were about 5 µs an
attribute, 100 µs an entity).  Any other recorder's History is encoded instance
by instance; both give the same rows.

Issues 18 and 19: a write of :data:`PACK_FROM` instances or more is stored packed
(:mod:`.history_packs`); its attribute instances are checked here (what their
encoding would refuse is refused in the write, :func:`.history_sql.check_internal`)
but kept in their internal form (``raw``), and encoded when the pack is settled
into its series.  Measured on a 21-attribute entity (``time.process_time``, best
of 5): encoded and packed 45 µs, checked and packed raw 16.5 µs.  A write of fewer
instances (a PATCH of one attribute) is encoded at once, as before.

Issue 19: an update of a live entity that records one attribute instance and no
Scope (the usual PATCH) is kept as a :class:`OneInstance`: its instance row and the
fields of its Entity record, without the record itself.  When the writer's memo knows
its series and shows that the record would not be written (only its modifiedAt
moves, :mod:`.history_batch`), the row is all it writes; else it becomes the
:class:`EncodedHistory` :func:`encode_write` gives (:meth:`OneInstance.general`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ngsi_ld.temporal import EntityRecord, History
from ngsi_ld.temporal.history import (
    Change,
    attribute_changes,
    deletion,
    entity_record,
    live_record,
    scope_change,
)

from ..temporal import instance_number
from .history_sql import check_internal, encode, encode_internal, least_checked
from .pack_signature import signature

__all__ = ["PACK_FROM", "EncodedHistory", "OneInstance", "Raw", "encode_write", "encoded",
           "one_instance"]

#: instances of one write from which they are packed (:mod:`.history_packs`); a write
#: of one instance (an attribute's PATCH) keeps its per-series row
PACK_FROM = 2

#: an attribute instance kept in its internal form: (attribute, instance, iid, t)
Raw = tuple[str, Mapping[str, Any], int, int]

Entity = Mapping[str, Any]


@dataclass(slots=True)
class EncodedHistory:
    """What one write records: its Entity record and its instance rows."""

    entity: EntityRecord
    #: (attribute, datasetId or "", the row's columns but the series: t, iid, flags...)
    rows: list[tuple[str, str, tuple[Any, ...]]]
    #: the instances of a write to pack, checked, not encoded (see the module docstring)
    raw: list[Raw] = field(default_factory=list)
    #: a pack ready to store (a prepared creation's, :mod:`.prepared`, or one encoded by
    #: :func:`encode_write` at once): its body, its number of instances, the first
    #: number, the earliest time, the signature of its attribute names
    #: (:func:`.history_packs.signature`; None: unknown) and those names (all of them,
    #: or more: schema 14, :mod:`.pack_names`); the only instances when given
    prepared: tuple[bytes, int, int, int, int | None, tuple[str, ...]] | None = None

    def size(self) -> int:
        """How many instances the write records."""
        return len(self.rows) + len(self.raw) + (self.prepared[1] if self.prepared else 0)

    def encode(self) -> list[tuple[str, str, tuple[Any, ...]]]:
        """Every instance row, the raw instances encoded."""
        # a prepared pack holds PACK_FROM instances or more: it is always packed
        assert self.prepared is None, "a prepared history is packed, never encoded"
        if not self.raw:
            return self.rows
        return self.rows + [(name, inst.get("datasetId") or "", encode_internal(name, inst, iid))
                            for name, inst, iid, _ in self.raw]


@dataclass(slots=True)
class OneInstance:
    """The history of an update of a live entity that records one attribute instance,
    no Scope (see the module docstring): what :func:`encode_write` would give, its
    Entity record in fields."""

    entity_id: str
    types: tuple[str, ...]
    created_at: Any
    modified_at: Any
    attribute: str
    #: the datasetId or ""
    dataset_id: str
    #: the row's columns but the series: t, iid, flags...
    columns: tuple[Any, ...]

    def general(self) -> EncodedHistory:
        """The same history as an :class:`EncodedHistory` (its record built)."""
        record = EntityRecord(self.entity_id, self.types, self.created_at, self.modified_at)
        return EncodedHistory(record, [(self.attribute, self.dataset_id, self.columns)])


def one_instance(before: Entity, after: Entity, now: str, iids: Callable[[], int],
                 changes: Sequence[Change]) -> OneInstance | None:
    """``encode_write(before, after, now, iids, changes)`` as a :class:`OneInstance`
    when ``changes`` (the update's ``attribute_changes``) are one attribute instance
    written and the Scope is unchanged; else None, no number taken from ``iids``."""
    if len(changes) != 1:
        return None
    name, inst, deleted = changes[0]
    if deleted or scope_change(before, after, now, _unnumbered) is not None:
        return None
    # numbered before it is encoded, as encode_write numbers it (a refusal keeps the gap)
    iid = iids()
    return OneInstance(*live_record(after, now), name, inst.get("datasetId") or "",
                       encode_internal(name, inst, iid))


def encoded(history: History) -> EncodedHistory:
    """The rows of a History whose instanceIds the store gave."""
    rows = []
    for inst in history.instances:
        iid = instance_number(inst.instance_id)
        assert iid is not None, "instanceIds of new instances come from the store"
        rows.append((inst.attribute, inst.dataset_id or "", encode(inst, iid)))
    return EncodedHistory(history.entity, rows)


def _unnumbered() -> str:
    return ""  # the Scope's instance is numbered when it is encoded


def encode_write(before: Entity | None, after: Entity | None, now: str,
                 iids: Callable[[], int],
                 changes: Sequence[Change] | None = None,
                 block: Callable[[int], int] | None = None,
                 least: int | None = None, doc: bytes | None = None) -> EncodedHistory | None:
    """The rows of ``history_of_write(before, after, now, ...)``, instance numbers from
    ``iids`` in the same order; None when it records nothing.  ``changes``: the
    ``attribute_changes`` of the two, when the caller has them already.  ``block``: the
    first of ``count`` consecutive numbers (``iids``' sequence), if the caller can give
    them: a write that packs attribute instances only takes its pack ready (below).
    ``least``: the least :func:`.history_sql.check_internal` of ``changes``, every one an
    attribute instance the caller checked (:func:`.attribute_walk.replace_walk`).
    ``doc``: ``after`` encoded (its ``entities`` row), if the caller has it: a pack of
    exactly its instances takes it as its body (:mod:`.history_packs`, schema 9)."""
    if before is None and after is not None and changes is None and block is not None:
        created = _created(after, now, block, doc)  # the usual creation, in one walk
        if created is not None:
            return created
    record = entity_record(before, after, now)
    if record is None:
        return None
    if changes is None:
        changes = list(attribute_changes(before, after))
    scope = scope_change(before, after, now, _unnumbered)
    packed = len(changes) + (scope is not None) >= PACK_FROM
    if packed and scope is None and block is not None:
        ready = _pack_now(record, changes, block, least,
                          None if doc is None or after is None else (doc, after.get("attrs")))
        if ready is not None:
            return ready
    rows = []
    raw: list[Raw] = []
    for name, inst, deleted in changes:
        if deleted:  # rare: the deletion record, as an Instance
            gone = deletion(name, inst, now, "")
            rows.append((name, gone.dataset_id or "", encode(gone, iids())))
        elif packed:  # refused here if it would not encode; encoded when settled
            iid = iids()
            raw.append((name, inst, iid, check_internal(name, inst)))
        else:
            rows.append((name, inst.get("datasetId") or "", encode_internal(name, inst, iids())))
    if scope is not None:
        rows.append((scope.attribute, "", encode(scope, iids())))
    return EncodedHistory(record, rows, raw)


def _created(after: Entity, now: str, block: Callable[[int], int],
             doc: bytes | None = None) -> EncodedHistory | None:
    """:func:`encode_write`'s history of the creation of ``after`` when it is the usual one
    (issue 19): :data:`PACK_FROM` attributes or more, each one instance object, no
    Scope.  Its pack made of the attributes' instances as they are, checked by
    ``least_checked`` (without the ``attribute_changes`` :func:`_pack_now` reads); None
    for any other creation, and for one an instance of which is refused: the general
    way then raises, in its own order (a creation that turns out to record fewer
    instances is encoded at once, numbering them as it goes).  ``doc``: ``after``
    encoded, the pack's body when given (its instances are the pack's, in order)."""
    attrs = after.get("attrs")
    if attrs.__class__ is not dict or len(attrs) < PACK_FROM or "scope" in after:
        return None
    items: list[tuple[str, Any]] = []
    for name, instances in attrs.items():
        if instances.__class__ is not list or len(instances) != 1 \
                or (inst := instances[0]).__class__ is not dict:
            return None  # several instances, or none, or another form: the general way
        items.append((name, inst))
    try:
        least = least_checked(items)
    except Exception:  # refused: by the general way, where and as it refuses it
        return None
    if least is None:  # no item (never: PACK_FROM items or more)
        return None
    count = len(items)
    return EncodedHistory(EntityRecord(*live_record(after, now)), [], prepared=(
        orjson.dumps(items) if doc is None else doc, count, block(count), least,
        signature(attrs), tuple(attrs)))


def _whole(attrs: Any, changes: Sequence[tuple[Any, ...]]) -> bool:
    """Whether the attribute instances of ``changes`` (name, instance, ...) are exactly
    those of ``attrs`` (an entity's), one an attribute, in its order: the same objects,
    so that the entity's document encodes them as a pack's body would."""
    if attrs.__class__ is not dict or len(attrs) != len(changes):
        return False
    for change, (name, instances) in zip(changes, attrs.items(), strict=True):
        if change[0] != name or instances.__class__ is not list or len(instances) != 1 \
                or instances[0] is not change[1]:
            return False
    return True


def _pack_now(record: EntityRecord, changes: Sequence[Change], block: Callable[[int], int],
              least: int | None = None,
              written: tuple[bytes, Any] | None = None) -> EncodedHistory | None:
    """The history of a packed write whose instances are all attribute instances (a
    creation, a replace, an upsert, an update of many attributes: no deletion, no
    Scope), its pack
    body encoded now, as a prepared creation's (the one form of a pack numbered in order,
    :func:`.history_packs.pack`); None for any other.  The body is encoded while the
    write's instances were just walked (encoded later, once the batch's hundred
    entities were walked, its dumps was 3.5 times the entity's own).  ``least``: as
    :func:`encode_write`'s (the instances then not checked again).  ``written``: the
    entity's document and its ``attrs``, the body when the changes are exactly its
    instances (:func:`_whole`)."""
    whole = written is not None and _whole(written[1], changes)
    items: list[tuple[str, Any]]  # arrays to orjson, as history_packs' lists
    if least is not None and whole and written is not None:
        # attribute instances, checked by the caller: the document is the body
        count = len(changes)
        return EncodedHistory(record, [], prepared=(written[0], count, block(count), least,
                                                    signature(written[1]), tuple(written[1])))
    if least is not None:  # attribute instances, checked by the caller
        items = [(name, inst) for name, inst, _ in changes]
    else:
        items = []
        for name, inst, deleted in changes:
            if deleted:
                return None
            items.append((name, inst))
        least = least_checked(items)  # refused here as encode_write would
    if least is None:
        return None  # no instance (encode_write packs none such)
    count = len(items)
    body = written[0] if whole and written is not None else orjson.dumps(items)
    names = tuple([name for name, _ in items])
    return EncodedHistory(record, [], prepared=(body, count, block(count), least,
                                                signature(names), names))
