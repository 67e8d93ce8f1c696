"""Packed instances: one row per entity write of many attributes (issues 18 and 19).

A write that records several instances of one Entity at once (a create, a
replace, a batch upsert or update, the loader) stores them in ONE row of
``temporal_packs``, keyed by (tenant, entity id, the write's first instance
number), instead of one ``temporal_instances`` row per attribute, a
``temporal_series`` row per new series and their hourly rollups.  Measured
(Python sqlite3, WAL, 100 entities of 21 attributes a transaction, CPU per
entity): 21 instance rows 43 µs, one packed row 2 µs; the series rows of a new
entity cost about as much again.  A write of one instance (a PATCH of one
attribute, the usual update) keeps its per-series row.

Every read and change of the history goes through the per-series tables as
before: the packs of the Entities it concerns are first *settled*, that is moved
into those tables, in a write transaction (:func:`.history_batch.settle`), with
their series and rollups, their instance numbers unchanged.  So the reads,
aggregations, rollups, instanceId operations, deletions and retention see
exactly what they saw when every instance had its own row; a history that is
written much and read little (the usual history) pays for its series only when
read, and once.

A pack's ``body`` is a JSON array with one array per instance: an attribute
instance of the write is ``[attribute, its internal form, iid]`` (checked when
written, encoded by :func:`.history_sql.encode_internal` when settled: the
encoding was most of what a recorded write cost once its rows were one); a
deletion or Scope instance, encoded already, ``[attribute, datasetId or "", t,
iid, flags, cre, mod, del, num, val, ext]`` (the columns of
:func:`.history_sql.encode`, ``val`` and ``ext`` as text).  The pack of a
prepared creation (:mod:`.prepared`: made in a loader's worker, before the
writer gives its instances their numbers, consecutive from the pack's ``iid``)
holds ``[attribute, its internal form]`` for each, its number the pack's ``iid``
plus its position in the body, so that the writer stores the body as it comes
(the pack of any write whose instances are numbered in order takes that form).
Schema 9: a write whose instances are exactly its entity's, one an attribute in the
order of its ``attrs`` (the usual creation, a batch upsert's usual replacement), has
the entity's stored document as its body, a JSON object: its instances are those of
its ``attrs``, numbered by position as above (the document is encoded once, for its
``entities`` row and its pack: a second ``dumps`` of the same instances was ~3 µs of
a replaced Streetlight's writer).  A body that is an array reads as before.
``tmin`` is the
smallest ``t`` (retention settles the packs that have an instance before its
cutoff).  A file written before this table existed has no packs: it reads as
before.  Schema 10: a body may be stored as a zstd frame of a dictionary trained on
the file's own packs (:mod:`.pack_codec`); it is decoded when taken.

Schema 12: ``sig``, the pack's *signature*, tells which attributes it may hold without
decoding it: bit ``crc32(name) % 63`` of each attribute name of its instances
(:func:`signature`); NULL (a pack of an older file, the column added at open) may hold
any.  A read of some attributes settles only the packs whose signature meets theirs
(:func:`packed`, :func:`take` with a :class:`Holding`): a query by type and attrs over 100,000
batch-upserted Streetlights (packs without the attribute asked) settled every one of
them in one transaction, millions of instance rows, and answered nothing in 10 s.  A
pack left packed holds no instance of the attributes read (a false positive of the
signature only settles a pack early); every other read or change settles all the packs
of its Entities as before.

Schema 13: the packs are indexed by signature (``temporal_packs_sig``), so that the
Entities with a pack that may hold some attributes are found without reading the packs
of the others (:func:`with_packs`; a query by attrs reads only the records of those and
of the Entities with a series of them).

Schema 14: the names of each signature are kept beside it (:mod:`.pack_names`), so
that a pack whose signature meets the names read only by a shared bit (``PM10`` and
``pm10``) is known to hold none of them.  Which packs may hold some attributes is one
rule, :class:`Holding`, used by :func:`packed`, :func:`take` and :func:`with_packs`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import orjson

from . import pack_codec, pack_names
from .history_rows import EncodedHistory, Raw
from .history_sql import encode_internal
from .inserts import insert_rows
from .pack_codec import PackCodec, decode
from .pack_signature import signature

__all__ = ["BY_SIGNATURE", "SCHEMA", "Holding", "PackedRows", "add", "create", "delete_entity",
           "pack", "packed", "prepared_body", "signature", "take", "take_before",
           "unpack", "with_packs"]

# A rowid table (schema 8): a pack is a kilobyte or more, and a WITHOUT ROWID table
# keeps at most about a quarter of a page of a row in its B-tree, the rest in an
# overflow page of its own: a pack of a new 8-column CSV entity (1.4 KB) took a
# 4 KB page for its last 400 bytes (two thirds of the file were such pages, and
# the writer wrote them).  The key is a small index beside it.  ``sig`` (schema 12)
# comes before the body, so that reading it never reads the body's overflow pages (a
# file of schema 11 has it last: ALTER TABLE adds it there).
SCHEMA = """
CREATE TABLE IF NOT EXISTS temporal_packs (
    tenant TEXT NOT NULL, entity_id TEXT NOT NULL, iid INTEGER NOT NULL,
    tmin INTEGER NOT NULL, sig INTEGER, body BLOB NOT NULL,
    PRIMARY KEY (tenant, entity_id, iid))
"""

# Schema 13: the packs by signature, so that a read of some attributes finds the packs
# that may hold them without reading every pack (:func:`with_packs`).  The packs of one
# signature are in the order of their rowids, which grow: a new pack's entry goes to
# the end of its signature's range (a batch of Streetlights, one signature, dirties one
# page of it); not keyed by entity, which would scatter a batch's entries.
BY_SIGNATURE = "CREATE INDEX IF NOT EXISTS temporal_packs_sig ON temporal_packs (tenant, sig)"

#: the distinct signatures of a tenant's packs meeting ?2, a seek each (a loose scan of
#: ``temporal_packs_sig``: a file has few distinct signatures, the packs of one kind of
#: write share theirs); NULL (a pack of schema 11 or before) is not among them
_MEETING = (
    "WITH RECURSIVE s(v) AS ("
    "SELECT (SELECT min(sig) FROM temporal_packs WHERE tenant = ?1)"
    " UNION ALL SELECT (SELECT min(sig) FROM temporal_packs WHERE tenant = ?1 AND sig > s.v)"
    " FROM s WHERE s.v IS NOT NULL)"
    " SELECT v FROM s WHERE v IS NOT NULL AND v & ?2 != 0"
)

#: (attribute, datasetId or "", the columns t, iid, flags, cre, mod, del, num, val, ext)
Row = tuple[str, str, tuple[Any, ...]]
#: the rows of the packs of one entity: (entity id, rows)
PackedRows = tuple[str, list[Row]]

_INSERT = ("INSERT INTO temporal_packs (tenant, entity_id, iid, tmin, sig, body)"
           " VALUES (?, ?, ?, ?, ?, ?)")

#: entity ids per ``IN (...)`` list
_CHUNK = 500

#: packs settled per statement by retention
_BATCH = 1000



def create(conn: sqlite3.Connection) -> None:
    """Create the table if needed (a file of an older version has none: it reads as
    before); one of schema 7 or below, WITHOUT ROWID, is copied into the new layout."""
    found = conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'table'"
                         " AND name = 'temporal_packs'").fetchone()
    if found is not None and "WITHOUT ROWID" in found[0].upper():
        # its packs' signatures unknown (NULL)
        conn.execute("ALTER TABLE temporal_packs RENAME TO temporal_packs_7")
        conn.execute(SCHEMA)
        conn.execute("INSERT INTO temporal_packs (tenant, entity_id, iid, tmin, body)"
                     " SELECT tenant, entity_id, iid, tmin, body FROM temporal_packs_7"
                     " ORDER BY iid")
        conn.execute("DROP TABLE temporal_packs_7")
    elif found is not None and not any(
            row[1] == "sig" for row in conn.execute("PRAGMA table_info(temporal_packs)")):
        # schema 11 or before: its packs' signatures unknown (NULL), new ones written
        conn.execute("ALTER TABLE temporal_packs ADD COLUMN sig INTEGER")
    else:
        conn.execute(SCHEMA)
    conn.execute(BY_SIGNATURE)
    pack_names.create(conn)
    pack_codec.create(conn)


def pack(tenant: str, entity_id: str,
         written: EncodedHistory) -> tuple[tuple[Any, ...], Collection[str]]:
    """The ``temporal_packs`` row of one write's instances (at least one), and the
    attribute names of those instances, for the row of its signature
    (:func:`.pack_names.note`; a prepared pack's may name more: its entity's
    attributes)."""
    if written.prepared is not None:  # a prepared creation's (its only instances)
        body, _, first, tmin, sig, names = written.prepared
        return (tenant, entity_id, first, tmin, sig, body), names
    raw = written.raw
    found = {r[0] for r in raw}
    sig = signature(found)
    if not written.rows and all(r[2] == raw[0][2] + i for i, r in enumerate(raw)):
        # numbered in order (a creation's, the usual pack): as a prepared creation's
        return ((tenant, entity_id, raw[0][2], min(r[3] for r in raw), sig,
                 prepared_body(raw)), found)
    more = {name for name, _, _ in written.rows}
    sig |= signature(more)
    found |= more
    items: list[Any] = [[name, inst, iid] for name, inst, iid, _ in raw]
    items.extend([name, dataset_id, *columns[:7], _text(columns[7]), _text(columns[8])]
                 for name, dataset_id, columns in written.rows)
    iids = [r[2] for r in written.raw] + [columns[1] for _, _, columns in written.rows]
    times = [r[3] for r in written.raw] + [columns[0] for _, _, columns in written.rows]
    return (tenant, entity_id, min(iids), min(times), sig, orjson.dumps(items)), found


def prepared_body(raw: Sequence[Raw]) -> bytes:
    """The ``body`` of the pack of the attribute instances ``raw`` (of a prepared
    creation, or numbered in order), numbered from the pack's ``iid`` in this order."""
    return orjson.dumps([[name, inst] for name, inst, _, _ in raw])


def _text(column: bytes | None) -> str | None:
    return None if column is None else column.decode()


def _bytes(column: str | None) -> bytes | None:
    return None if column is None else column.encode()


def unpack(body: bytes, first: int) -> list[Row]:
    """The instance rows of a pack's ``body`` (its ``iid``: ``first``), their internal
    forms encoded now (what :func:`.history_sql.encode_internal` gave for them when they
    were written)."""
    rows: list[Row] = []
    items = orjson.loads(body)
    if items.__class__ is dict:  # an entity's document: its instances by position
        items = [(name, inst) for name, instances in items["attrs"].items()
                 for inst in instances]
    for position, item in enumerate(items):
        if len(item) == 2:  # a prepared creation's: numbered by its position
            name, inst = item
            rows.append((name, inst.get("datasetId") or "",
                         encode_internal(name, inst, first + position)))
        elif len(item) == 3:
            name, inst, iid = item
            rows.append((name, inst.get("datasetId") or "", encode_internal(name, inst, iid)))
        else:
            name, dataset_id, *columns = item
            rows.append((name, dataset_id,
                         (*columns[:7], _bytes(columns[7]), _bytes(columns[8]))))
    return rows


def add(conn: sqlite3.Connection, packs: Sequence[tuple[Any, ...]],
        codec: PackCodec | None = None) -> None:
    """Insert rows made by :func:`pack`, their bodies compressed by ``codec`` when it
    has a dictionary (:mod:`.pack_codec`; None: as they are)."""
    insert_rows(conn, _INSERT, packs if codec is None else codec.encode(conn, packs))


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for first in range(0, len(ids), _CHUNK):
        yield ids[first:first + _CHUNK]


class Holding:
    """The packs that may hold an instance of one of some attribute names (schemas 12
    and 14): those whose signature is NULL (not known), or meets the names' bits and is
    not one of the signatures whose names are known to include none of them
    (:func:`.pack_names.excluded`).  Made in the transaction that uses it (a reader's
    snapshot, or the writer's transaction), since a later write may add names to a
    signature.  The one statement of the rule: :meth:`sql` for a statement on the
    packs, :meth:`holds` for a signature read (:func:`with_packs`).

    The names of the signatures are read once, when first needed: a read whose
    Entities have no pack meeting the bits (the usual read) never reads them."""

    __slots__ = ("_conn", "_excluded", "_names", "bits")

    def __init__(self, conn: sqlite3.Connection, names: Collection[str]) -> None:
        self._conn = conn
        self._names = names
        self.bits = signature(names)
        self._excluded: frozenset[int] | None = None

    @property
    def excluded(self) -> frozenset[int]:
        """The signatures that meet ``bits`` but whose packs hold none of the names."""
        if self._excluded is None:
            self._excluded = frozenset(pack_names.excluded(self._conn, self.bits, self._names))
        return self._excluded

    def holds(self, sig: int | None) -> bool:
        """Whether a pack of signature ``sig`` may hold one of the names."""
        return sig is None or (sig & self.bits != 0 and sig not in self.excluded)

    def meeting_sql(self) -> tuple[str, tuple[int, ...]]:
        """The condition (`` AND ...``) on ``temporal_packs`` of the packs that
        :meth:`holds` or whose signature is excluded (the bits alone), its arguments."""
        return " AND (sig IS NULL OR sig & ? != 0)", (self.bits,)

    def sql(self) -> tuple[str, tuple[int, ...]]:
        """The condition (`` AND ...``) on ``temporal_packs`` of :meth:`holds`, and its
        arguments."""
        excluded = sorted(self.excluded)
        if not excluded:
            return self.meeting_sql()
        return (" AND (sig IS NULL OR sig & ? != 0 AND sig NOT IN"
                f" ({','.join('?' * len(excluded))}))", (self.bits, *excluded))


def _meets(holding: Holding | None) -> tuple[str, tuple[int, ...]]:
    """The SQL condition (and its arguments) of the packs of ``holding`` (None: every
    pack)."""
    return ("", ()) if holding is None else holding.sql()


def packed(conn: sqlite3.Connection, tenant: str, ids: Sequence[str],
           holding: Holding | None = None) -> list[str]:
    """The Entities of ``ids`` that have packed instances (a read: settle them first);
    with ``holding``, packs that may hold one of its attributes: first by its bits alone,
    then, if some have packs meeting them, by the whole rule (the names of the
    signatures read only then).  One probe an Entity, ended by its first such pack."""
    if holding is None:
        return _packed(conn, tenant, ids, "", ())
    found = _packed(conn, tenant, ids, *holding.meeting_sql())
    if found and holding.excluded:
        found = _packed(conn, tenant, found, *holding.sql())
    return found


def _packed(conn: sqlite3.Connection, tenant: str, ids: Sequence[str], meets: str,
            extra: tuple[int, ...]) -> list[str]:
    found: list[str] = []
    for part in _chunks(list(dict.fromkeys(ids))):
        found.extend(eid for (eid,) in conn.execute(
            "SELECT value FROM json_each(?) WHERE EXISTS (SELECT 1 FROM temporal_packs"
            f" WHERE tenant = ? AND entity_id = value{meets})",
            (orjson.dumps(part).decode(), tenant, *extra)))
    return found


def with_packs(conn: sqlite3.Connection, tenant: str, holding: Holding) -> set[str]:
    """The Entities with a pack that may hold one of the attributes of ``holding``
    (those :func:`packed` finds with it), by the index of the packs' signatures: a
    seek per distinct signature meeting its bits, then the packs of those it holds."""
    found = {eid for (eid,) in conn.execute(
        "SELECT entity_id FROM temporal_packs INDEXED BY temporal_packs_sig"
        " WHERE tenant = ? AND sig IS NULL", (tenant,))}
    meeting = [sig for (sig,) in conn.execute(_MEETING, (tenant, holding.bits))
               if holding.holds(sig)]
    for first in range(0, len(meeting), _CHUNK):
        part = meeting[first:first + _CHUNK]
        found.update(eid for (eid,) in conn.execute(
            "SELECT entity_id FROM temporal_packs INDEXED BY temporal_packs_sig"
            f" WHERE tenant = ? AND sig IN ({','.join('?' * len(part))})", (tenant, *part)))
    return found


def _grouped(conn: sqlite3.Connection, found: Sequence[tuple[str, int, bytes]]
             ) -> list[PackedRows]:
    bodies = decode(conn, [body for _, _, body in found])
    by_entity: dict[str, list[Row]] = {}
    for (entity_id, first, _), body in zip(found, bodies, strict=True):
        by_entity.setdefault(entity_id, []).extend(unpack(body, first))
    return list(by_entity.items())


def take(conn: sqlite3.Connection, tenant: str, ids: Sequence[str],
         holding: Holding | None = None) -> list[PackedRows]:
    """In a write transaction: remove the packs of the Entities ``ids`` (with
    ``holding``: those that may hold one of its attributes); their rows."""
    meets, extra = _meets(holding)
    taken: list[tuple[str, int, bytes]] = []
    for part in _chunks(list(dict.fromkeys(ids))):
        marks = ",".join("?" * len(part))
        taken.extend(conn.execute(
            "SELECT entity_id, iid, body FROM temporal_packs WHERE tenant = ?"
            f" AND entity_id IN ({marks}){meets}", (tenant, *part, *extra)).fetchall())
        conn.execute(f"DELETE FROM temporal_packs WHERE tenant = ? AND entity_id IN ({marks})"
                     f"{meets}", (tenant, *part, *extra))
    return _grouped(conn, taken)


def take_before(conn: sqlite3.Connection,
                cutoff: int) -> dict[str, list[PackedRows]]:
    """In a write transaction: remove up to a batch of the packs holding an instance
    before ``cutoff`` (µs); their rows by tenant (empty: none left)."""
    found = conn.execute("SELECT tenant, entity_id, iid, body FROM temporal_packs"
                         " WHERE tmin < ? LIMIT ?", (cutoff, _BATCH)).fetchall()
    conn.executemany("DELETE FROM temporal_packs WHERE tenant = ? AND entity_id = ? AND iid = ?",
                     [row[:3] for row in found])
    by_tenant: dict[str, list[tuple[str, int, bytes]]] = {}
    for tenant, entity_id, first, body in found:
        by_tenant.setdefault(tenant, []).append((entity_id, first, body))
    return {tenant: _grouped(conn, rows) for tenant, rows in by_tenant.items()}


def delete_entity(conn: sqlite3.Connection, tenant: str, entity_id: str) -> None:
    """Forget the packs of one Entity (its temporal evolution is deleted)."""
    conn.execute("DELETE FROM temporal_packs WHERE tenant = ? AND entity_id = ?",
                 (tenant, entity_id))
