"""Many entity writes of one tenant on the writer thread: mutations first, then the rows.

The one write path of :class:`~storage.sqlite.store.SqliteStore`: a batch
(``modify_many``) and the single writes the writer thread found queued together
(``modify``, grouped by :class:`~storage.sqlite.threads.Worker`) both come here.
The mutations run first, in order, on the states read in one statement (an id
given twice sees its first result); then the net change of each entity is
written with one ``executemany`` per table (:mod:`.bulk`) and the history of all
the writes with one per table (:mod:`.history_batch`).  A mutation that raises is
that write's error: nothing of it is written, the others are.

A batch upsert replacing an entity that exists is stamped and walked in one pass
(:func:`.attribute_walk.replace_walk`); each Change tells when what it wrote expires
(``Change.expires``, from the byte search of the ``entities`` row), so that the
broker's sweeper need not walk it.  When nobody is likely to read the states of such a
write (``Store.wants_before``), its Change holds both as the bytes read and written, and
the decoded states, the entity the batch parsed included (the mutation lets go of it),
are freed here as soon as its rows are noted, hot, rather than by the event loop.

A creation recorded by the standard recorder takes the short way of a prepared one:
its history encoded without the walk an update needs (its changes are all its
attributes'), its pack made ready, its value rows kept flat (:meth:`.bulk.Rows.add`).
An update that is its entity's only write here and records one attribute instance (a
PATCH of one attribute) hands its history as a :class:`.history_rows.OneInstance`; the
usual PATCH (its mutation marked, ``ngsi_ld.operations.USUAL``) tells it and its index
decision from its attribute alone (:mod:`.usual_patch`), without the walk.

The loader's batches (``SqliteStore.modify_prepared``) bring the rows of their
entities as created, prepared in its worker processes (:mod:`.prepared`): an
entity absent from the store and written once in the batch is stored from them,
its mutation not called, its names and instance numbers given here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ngsi_ld.batch import REPLACEMENT
from ngsi_ld.model import written_types
from ngsi_ld.operations import KEEPS_CURRENT, USUAL
from ngsi_ld.temporal import WRITE_TIME, History
from ngsi_ld.temporal.history import Change as HistoryChange

from ..base import Change, Entity, Mutation, Recorder, WantsBefore
from ..prepared import PreparedCreation
from ..sharing import ENTITY
from . import feed, sql
from .attribute_walk import replace_walk, walk
from .bulk import Rows, expiry_of
from .history import SqliteHistory
from .history_rows import EncodedHistory, OneInstance, encode_write, one_instance
from .usual_patch import usual_patch

__all__ = ["Item", "Result", "write_all"]

#: one write: the entity id, its mutation, and what records its history (None: nothing)
Item = tuple[str, Mutation, Recorder | None]
#: (True, the Change) or (False, what the mutation raised)
Result = tuple[bool, Any]


#: what ``write_all`` keeps of an entity whose states it handed over (an entity, not
#: None: it is stored)
_HANDED: Entity = {}


def _stamp(entity: Entity | None) -> str | None:
    """The modifiedAt that the entities row of ``entity`` holds (bulk.Rows)."""
    modified = None if entity is None else entity.get("modifiedAt")
    return modified if isinstance(modified, str) else None


def _wanted(wants: WantsBefore, tenant: str, entity_id: str, before: Entity,
            after: Entity | None) -> bool:
    """``wants`` asked of a write from ``before`` to ``after``, with the types the change
    bus reads (``ChangeBus.publish_written``); a hint that raises is a yes."""
    types = written_types(before.get("type", ()),
                          () if after is None else after.get("type", ()))
    try:
        return wants(tenant, entity_id, types)
    except Exception:
        return True


def _writes(items: Sequence[Item]) -> dict[str, int]:
    """How many writes of each entity ``items`` hold."""
    seen: dict[str, int] = {}
    for entity_id, _, _ in items:
        seen[entity_id] = seen.get(entity_id, 0) + 1
    return seen


def _fresh(items: Sequence[Item], docs: Mapping[str, bytes | None],
           prepared: Mapping[str, PreparedCreation],
           seen: Mapping[str, int]) -> dict[str, PreparedCreation]:
    """The prepared creations to store as prepared: of entities absent, written once, and
    whose recorded history (if any) was prepared at the recorder's time."""
    fresh = {}
    for entity_id, _, record in items:
        created = prepared.get(entity_id)
        if created is None or docs[entity_id] is not None or seen[entity_id] != 1:
            continue
        if record is not None and (created.history is None
                                   or getattr(record, WRITE_TIME, None) != created.history.at):
            continue
        fresh[entity_id] = created
    return fresh


def write_all(conn: sqlite3.Connection, tenant: str, items: Sequence[Item],
              history: SqliteHistory, origin: str | None,
              prepared: Mapping[str, PreparedCreation] | None = None,
              wants: WantsBefore | None = None) -> list[Result]:
    """Apply ``items`` in order in the caller's transaction (see the module docstring);
    ``origin``: this process's name in the change feed of a shared file (None: not
    shared); ``prepared``: creations prepared before (:mod:`storage.prepared`), their
    result (True, None) when stored as prepared; ``wants``: whether a write's state
    before may be read (``Store.wants_before``; None: yes), else its Change holds the
    bytes read (``Change.stored``) and the decoded state is freed here."""
    if len(items) == 1:  # the usual single write: the plain lookup is the cheaper one
        docs = {items[0][0]: sql.read_doc(conn, tenant, items[0][0])}
    else:
        docs = sql.read_docs(conn, tenant, list(dict.fromkeys(i for i, _, _ in items)))
    if origin is not None and any(r is not None for _, _, r in items):
        history.sync(conn)  # processes sharing the file number instances too
    # a shared file's change feed carries the entities: they go the usual way
    seen = _writes(items)
    fresh = _fresh(items, docs, prepared, seen) if prepared and origin is None else {}
    originals: dict[str, Entity | None] = {}
    latest: dict[str, tuple[Entity | None, bytes | None]] = {}
    results: list[Result] = []
    written: set[str] = set()
    histories: list[History | EncodedHistory | OneInstance] = []
    rows = Rows(tenant)
    stamps: dict[str, str | None] = {}
    #: the modifiedAt of the entities whose states were handed over as bytes (below)
    handed: dict[str, str | None] = {}
    for entity_id, mutation, record in items:
        created = fresh.get(entity_id) if fresh else None
        if created is not None:  # stored from its prepared rows, numbered here
            rows.add_prepared(created)
            stamps[entity_id] = created.modified
            results.append((True, None))
            if record is not None and created.history is not None:
                prior = created.history
                first = history.new_instance_numbers(prior.size)
                histories.append(EncodedHistory(prior.record, [], prepared=(
                    prior.body, prior.size, first, prior.tmin, prior.sig, created.attrs)))
            continue
        if entity_id in latest:
            before, raw = latest[entity_id]
        else:
            raw = docs[entity_id]
            before = None if raw is None else orjson.loads(raw)
            if seen[entity_id] > 1:  # its net change is noted from its first state
                originals[entity_id] = before
            latest[entity_id] = (before, raw)
        current = None
        names: set[str] | None = None
        changes: list[HistoryChange] | None = None
        least: int | None = None  # the least t of changes, told by the one pass
        if raw is not None:
            # the mutation gets its own copy unless it promises only to read it
            keeps = getattr(mutation, KEEPS_CURRENT, False)
            current = before if keeps else orjson.loads(raw)
        try:
            after: Entity | None
            # a batch upsert's replacement of the entity: stamped and walked in one pass
            replacing = None if current is None else getattr(mutation, REPLACEMENT, None)
            replaced = None if replacing is None else replacing(current)
            if replaced is not None and current is not None:
                replaced_id, new, now = replaced
                after, names, changes, least = replace_walk(replaced_id, new, now, current)
            else:
                after = mutation(current)
            encoded = None if after is None else orjson.dumps(after)
            recorded: History | EncodedHistory | OneInstance | None = None
            if record is not None:
                # the standard recorder's history is encoded here, without Instances
                at = getattr(record, WRITE_TIME, None)
                if at is None:
                    recorded = record(before, after, history.new_instance_id)
                elif before is None:  # a creation: no index decision to walk for
                    recorded = encode_write(None, after, at, history.new_instance_number,
                                            None, history.new_instance_numbers, doc=encoded)
                else:  # the index decision and the history's instances in one walk
                    usual = getattr(mutation, USUAL, None)
                    lane = None
                    if usual is not None and after is not None and current is before \
                            and seen[entity_id] == 1:  # the usual PATCH: from its attribute
                        lane = usual_patch(before, after, usual, at,
                                           history.new_instance_number)
                    if lane is not None:
                        names, recorded = lane
                    else:
                        if changes is None:
                            names, changes = walk(before, after)
                        if after is not None and seen[entity_id] == 1:  # maybe a usual PATCH
                            recorded = one_instance(before, after, at,
                                                    history.new_instance_number, changes)
                        if recorded is None:
                            recorded = encode_write(before, after, at,
                                                    history.new_instance_number, changes,
                                                    history.new_instance_numbers, least,
                                                    doc=encoded)
        except Exception as exc:
            results.append((False, exc))
            continue
        latest[entity_id] = (after, encoded)
        written.add(entity_id)
        # when it expires, for its row and the broker's sweeper (which need not look)
        expires = None if after is None or encoded is None else expiry_of(after, encoded)
        hand = replaced is not None and before is not None and raw is not None \
            and wants is not None and raw is docs[entity_id] \
            and not _wanted(wants, tenant, entity_id, before, after)
        if hand:
            # nobody is likely to read the states: the bytes read and written are
            # handed over (decoded if read after all) and the decoded states are freed
            # here, hot rather than on the event loop (benchmarks/README.md,
            # upsertbefore for before, slcut for after).  Asked of a batch replacement
            # only, whose after shares nothing with before: a PATCH's after shares all
            # but one attribute, so the hint (~2-3 µs of the writer) freed almost
            # nothing there.  (A replacement's states and bytes are all there: hand.)
            assert before is not None and raw is not None
            assert after is not None and encoded is not None
            results.append((True, Change.stored(
                entity_id, raw, before.get("type", ()), None, expires,
                after_stored=encoded, after_types=after.get("type", ()))))
        else:
            results.append((True, Change(entity_id, before, after, expires)))
        if recorded is not None:  # the write's history, in its transaction
            histories.append(recorded)
        if seen[entity_id] == 1:  # its net change: its index rows noted while at hand
            rows.add(entity_id, before, after, encoded, names, expires)
        if origin is not None and (before is not None or after is not None):
            feed.append(conn, origin, tenant, ENTITY, entity_id, before=raw, after=encoded)
        if hand and seen[entity_id] == 1:
            # its last use here: its stamp kept, the states let go (the entity the
            # batch parsed too: the mutation handed it over, ngsi_ld.batch.REPLACEMENT)
            handed[entity_id] = _stamp(after)
            latest[entity_id] = (_HANDED, encoded)
            before = current = after = replaced = changes = recorded = None
            del new  # bound: a replacement's
    if histories:
        stamps.update((i, handed[i] if i in handed else _stamp(latest[i][0]))
                      for i in written)
        history.record(conn, tenant, histories, stamps)
    for entity_id in written:  # an entity written more than once: its net change
        if seen[entity_id] > 1:
            after, encoded = latest[entity_id]
            rows.add(entity_id, originals[entity_id], after, encoded)
    if stamps or any(latest[i][0] is not None for i in written):
        sql.insert_tenant(conn, tenant)  # storing an entity makes its tenant exist
    rows.write(conn, sql.next_version)
    return results
