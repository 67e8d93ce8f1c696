"""The history of the entity writes of one transaction, written in a few statements.

What :func:`.history_sql.write_history` writes for one entity write, for all the
writes of a batch (``SqliteStore.modify_many``; a single write is a batch of
one): the Entity records and the series of every entity read in one statement
each, the records merged in Python in the order of the writes, then the rows
table by table (multi-row INSERTs, :mod:`.inserts`).  Measured on a batch upsert of 100 Streetlights
(18 attributes each): a SELECT per attribute for its series id and an UPDATE
per entity for its record were a quarter of the batch's CPU time.

Series ids of new series are taken here as ``max(sid) + 1`` onwards, in the
write transaction that holds the file's write lock (what SQLite itself would
pick for the rows inserted one by one).

Issue 15: a record whose write changes only its modifiedAt (an update of a live
Entity, the usual write) is not written at all: the Entity's own row has that
modifiedAt, and reads take it from there (:func:`.history_sql.later`).  On a
PATCH of one attribute this saved 0.8 of the 2.2 WAL pages the history added.
The records and series ids read are remembered by the writer between
transactions (:mod:`.history_memo`).

Issues 18 and 19: a write of :data:`PACK_FROM` instances or more is stored as one
packed row (:mod:`.history_packs`), without series, instance or rollup rows; the
same instance rows go into their series later, by :func:`settle` and
:func:`settle_before`, before anything reads or changes them.

Issue 19: the history of a PATCH of one attribute comes as a
:class:`~.history_rows.OneInstance`; when the memo knows its Entity's stored record,
which the write would leave alone (:func:`_stamp_only`), and its series id, its
instance row is written as it is, without the record's merge and the series' lookup;
otherwise it goes the general way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

import orjson

from ngsi_ld.temporal import EntityRecord

from ..temporal import merge_record
from . import history_packs as packs
from . import history_rollups as rollups
from . import pack_names
from .history_memo import Memo, SeriesKey
from .history_rows import PACK_FROM, EncodedHistory, OneInstance
from .history_sql import _COLUMNS, _record, later, note_iid, series_id
from .inserts import insert_rows

__all__ = ["settle", "settle_before", "write_histories"]

#: entity ids per ``IN (...)`` list: well under SQLite's bound on parameters
_CHUNK = 500

_PUT_RECORD = (
    "INSERT INTO temporal_entities (tenant, entity_id, types, created, modified, deleted)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, entity_id) DO UPDATE SET"
    " types = excluded.types, created = excluded.created, modified = excluded.modified,"
    " deleted = excluded.deleted"
)


#: (sid, t, iid), the primary key of ``temporal_instances`` (in C, called once a row)
_instance_key = itemgetter(0, 1, 2)


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for first in range(0, len(ids), _CHUNK):
        yield ids[first:first + _CHUNK]


def _stored_records(conn: sqlite3.Connection, tenant: str,
                    ids: Sequence[str]) -> dict[str, EntityRecord]:
    found: dict[str, EntityRecord] = {}
    for part in _chunks(ids):
        rows = conn.execute(
            "SELECT entity_id, types, created, modified, deleted FROM temporal_entities"
            f" WHERE tenant = ? AND entity_id IN ({','.join('?' * len(part))})",
            (tenant, *part))
        for row in rows:
            found[row[0]] = _record(row)
    return found


def _stored_series(conn: sqlite3.Connection, tenant: str,
                   ids: Sequence[str]) -> dict[tuple[str, str, str], int]:
    found: dict[tuple[str, str, str], int] = {}
    for part in _chunks(ids):
        rows = conn.execute(
            "SELECT entity_id, attribute, dataset_id, sid FROM temporal_series"
            f" WHERE tenant = ? AND entity_id IN ({','.join('?' * len(part))})",
            (tenant, *part))
        for entity_id, attribute, dataset_id, sid in rows:
            found[entity_id, attribute, dataset_id] = sid
    return found


def write_histories(conn: sqlite3.Connection, tenant: str,
                    histories: Sequence[EncodedHistory | OneInstance],
                    stamps: Mapping[str, str | None] | None = None,
                    memo: Memo | None = None) -> None:
    """Record ``histories`` (in the order of their writes) in the caller's transaction:
    the same rows as :func:`.history_sql.write_history` for each in turn.

    ``stamps``: the modifiedAt that the ``entities`` row of each written entity holds
    after these writes (None: the entity is gone).  A record that would only take
    that modifiedAt is not written: its reads take the live Entity's (``history_sql``).
    ``memo``: the stored records and series ids the writer remembers (:mod:`.history_memo`).
    A :class:`~.history_rows.OneInstance` must be its entity's only history here.
    """
    if not histories:
        return
    memo = Memo() if memo is None else memo
    memo.check(conn)
    stamps = stamps or {}
    ready: list[tuple[Any, ...]] = []  # rows of one-instance updates, their series known
    general: list[EncodedHistory] = []
    for history in histories:
        if isinstance(history, OneInstance):
            row = _quick_row(tenant, history, stamps, memo)
            if row is not None:
                ready.append(row)
                continue
            history = history.general()
        general.append(history)
    single: list[packs.PackedRows] = []
    if general:
        ids = list(dict.fromkeys(h.entity.entity_id for h in general))
        _put_records(conn, tenant, ids, general, stamps, memo)
        packed: list[tuple[Any, ...]] = []
        named: list[tuple[int | None, Collection[str]]] = []  # (signature, names) of each pack
        for history in general:
            size = history.size()
            if size >= PACK_FROM:
                row, names = packs.pack(tenant, history.entity.entity_id, history)
                packed.append(row)
                named.append((row[4], names))
            elif size:
                single.append((history.entity.entity_id, history.encode()))
        if packed:
            # schema 14: the names of a new signature, in the packs' transaction
            pack_names.note(conn, memo.pack_names, named)
            packs.add(conn, packed, memo.packs)
            note_iid(conn, max(_last_iid(h) for h in general if h.size() >= PACK_FROM), memo)
    _put_instances(conn, tenant, single, memo, ready)


def _quick_row(tenant: str, history: OneInstance, stamps: Mapping[str, str | None],
               memo: Memo) -> tuple[Any, ...] | None:
    """The instance row of a one-instance update when it is all the update writes: its
    stored record known and left alone (what :func:`_put_records` would tell of the
    record ``history.general()`` holds), its series id known; else None."""
    entity_id = history.entity_id
    stored = memo.record(tenant, entity_id)
    if stored is None or not history.modified_at or not _only_stamp(
            stored, history.types, history.created_at, history.modified_at,
            stamps.get(entity_id)):
        return None
    sid = memo.sid(tenant, (entity_id, history.attribute, history.dataset_id))
    return None if sid is None else (sid, *history.columns)


def _last_iid(history: EncodedHistory) -> int:
    if history.prepared is not None:  # a prepared creation's pack: its only instances
        _, count, first, _, _, _ = history.prepared
        return first + count - 1
    numbers: list[int] = [columns[1] for _, _, columns in history.rows]
    numbers.extend(r[2] for r in history.raw)
    return max(numbers)


def settle(conn: sqlite3.Connection, tenant: str, ids: Sequence[str], memo: Memo,
           holding: packs.Holding | None = None) -> None:
    """In a write transaction: move the packed instances of the Entities ``ids`` into
    their series (created if new), with their rollups (:mod:`.history_packs`); with
    ``holding``, only the packs that may hold one of its attributes (what a read of
    those attributes needs)."""
    taken = packs.take(conn, tenant, ids, holding)
    if taken:
        memo.check(conn)
        _put_instances(conn, tenant, taken, memo)


def settle_before(conn: sqlite3.Connection, cutoff: int, memo: Memo) -> bool:
    """In a write transaction: :func:`settle` a batch of the packs that hold an instance
    before ``cutoff`` (µs), of any tenant; whether any was."""
    taken = packs.take_before(conn, cutoff)
    if taken:
        memo.check(conn)
    for tenant, rows in taken.items():
        _put_instances(conn, tenant, rows, memo)
    return bool(taken)


def _stamp_only(stored: EntityRecord | None, merged: EntityRecord, live: str | None) -> bool:
    """Whether ``merged`` differs from ``stored`` in its modifiedAt alone, and a read of
    the stored record gives ``merged``'s as the live Entity's (the later one)."""
    return (stored is not None and merged.deleted_at is None
            and _only_stamp(stored, merged.types, merged.created_at, merged.modified_at, live))


def _only_stamp(stored: EntityRecord, types: tuple[str, ...], created: Any, modified: Any,
                live: str | None) -> bool:
    """:func:`_stamp_only` of a live record of these fields (its deletedAt None)."""
    return (live is not None and modified == live and stored.deleted_at is None
            and types == stored.types and created == stored.created_at
            and later(stored.modified_at, live) == live)


def _put_records(conn: sqlite3.Connection, tenant: str, ids: list[str],
                 histories: Sequence[EncodedHistory], stamps: Mapping[str, str | None],
                 memo: Memo) -> None:
    stored: dict[str, EntityRecord] = {}
    unknown: list[str] = []
    for entity_id in ids:
        known = memo.record(tenant, entity_id)
        if known is None:
            unknown.append(entity_id)
        else:
            stored[entity_id] = known
    if unknown:
        stored.update(_stored_records(conn, tenant, unknown))
    # -- the Entity records: each write merged into the state the one before left
    latest: dict[str, EntityRecord] = dict(stored)
    new_types: list[tuple[str, str, str]] = []
    for history in histories:
        record = history.entity
        before = latest.get(record.entity_id)
        if before is None or before.types != record.types:
            new_types.extend((tenant, t, record.entity_id) for t in record.types)
        latest[record.entity_id] = merge_record(before, record)
    changed = [r for entity_id, r in latest.items() if stored.get(entity_id) != r
               and not _stamp_only(stored.get(entity_id), r, stamps.get(entity_id))]
    for r in changed:
        stored[r.entity_id] = r
    for r in stored.values():
        memo.note_record(tenant, r)
    if changed:
        insert_rows(conn, _PUT_RECORD, [
            (tenant, r.entity_id, orjson.dumps(list(r.types)), r.created_at, r.modified_at,
             r.deleted_at) for r in changed])
    if new_types:
        insert_rows(
            conn, "INSERT OR IGNORE INTO temporal_types (tenant, type, entity_id) VALUES (?, ?, ?)",
            new_types)


def _known_series(conn: sqlite3.Connection, tenant: str,
                  writes: Sequence[packs.PackedRows], memo: Memo) -> dict[SeriesKey, int]:
    """The stored series ids of the rows of ``writes`` (new series absent)."""
    sids: dict[SeriesKey, int] = {}
    unknown: list[SeriesKey] = []
    for entity_id, written in writes:
        for attribute, dataset_id, _ in written:
            key = (entity_id, attribute, dataset_id)
            sid = memo.sid(tenant, key)
            if sid is None:
                unknown.append(key)
            else:
                sids[key] = sid
    if len(unknown) == 1:
        # one series to find (an attribute's PATCH): by its key, created if new
        key = unknown[0]
        sids[key] = series_id(conn, tenant, key[0], key[1], key[2] or None)
    elif unknown:
        sids.update(_stored_series(conn, tenant, list(dict.fromkeys(k[0] for k in unknown))))
    return sids


def _put_instances(conn: sqlite3.Connection, tenant: str,
                   writes: Sequence[packs.PackedRows], memo: Memo,
                   ready: Sequence[tuple[Any, ...]] = ()) -> None:
    """The instance rows of ``writes`` (entity id, rows) in their series, with the series
    that are new and the rollups; ``ready``: rows of known series, written with them."""
    if not writes and not ready:
        return
    sids = _known_series(conn, tenant, writes, memo) if writes else {}
    new_series: list[tuple[int, str, str, str, str]] = []
    next_sid: int | None = None
    rows: list[tuple[Any, ...]] = list(ready)
    for entity_id, written in writes:
        for attribute, dataset_id, columns in written:
            key = (entity_id, attribute, dataset_id)
            sid = sids.get(key)
            if sid is None:
                if next_sid is None:
                    (last,) = conn.execute(
                        "SELECT coalesce(max(sid), 0) FROM temporal_series").fetchone()
                    next_sid = int(last) + 1
                sid = sids[key] = next_sid
                next_sid += 1
                new_series.append((sid, tenant, *key))
            rows.append((sid, *columns))
    if new_series:
        insert_rows(
            conn, "INSERT INTO temporal_series (sid, tenant, entity_id, attribute, dataset_id)"
            " VALUES (?, ?, ?, ?, ?)", new_series)
    if rows:
        rows.sort(key=_instance_key)  # in key order: the B-tree is filled page by page
        insert_rows(conn, f"INSERT INTO temporal_instances (sid, {_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        note_iid(conn, max(row[2] for row in rows), memo)
        rollups.add(conn, rows)
    for key, sid in sids.items():
        memo.note_sid(tenant, key, sid)
