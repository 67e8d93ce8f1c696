"""The SQL of the temporal history in the embedded store (docs/temporal.md 3.3).

Tables: ``temporal_entities`` (the Entity records, which outlive the Entities),
``temporal_types`` (type queries on history), ``temporal_series`` (one row per
Entity, Attribute and datasetId) and ``temporal_instances``, clustered by
(series, time), so that lastN and time windows read consecutive rows and no read
scans the instances of other series.

An instance row is compact: times are integers (µs since the epoch), the
instanceId is its number (``urn:ngsi-ld:Instance:<iid>``), the attribute, entity
and datasetId are the series', a number is a REAL (what SUM, MIN, MAX read), any
other value and the other members are orjson.  ``flags`` says: bit 0, ``t`` is the
observedAt (else it is when the instance was written); bits 1-4, the kind; bit 5,
the number is an integer.  A time whose text is not the shortest form of its
instant (``...00.000Z``) is kept as written in the members.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson

from ngsi_ld.errors import BadRequestData
from ngsi_ld.instances import MAIN_MEMBER
from ngsi_ld.temporal import (
    SCOPE,
    EntityRecord,
    History,
    Instance,
    TemporalQuery,
    format_micros,
    split_internal,
    to_micros,
)
from ngsi_ld.temporal.instants import millis_micros

from ..temporal import INSTANCE_PREFIX, instance_number, merge_record
from . import history_rollups as rollups
from .history_memo import Memo

__all__ = ["SCHEMA", "SERIES_BY_ATTRIBUTE", "Series", "check_internal", "create_tables",
           "decode", "encode", "encode_internal",
           "entity_record", "later", "least_checked", "max_iid", "note_iid", "read_series",
           "series_rows", "stamps_instant", "with_attribute", "with_series", "write_history"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS temporal_entities (
    tenant TEXT NOT NULL, entity_id TEXT NOT NULL, types BLOB NOT NULL,
    created TEXT, modified TEXT, deleted TEXT,
    PRIMARY KEY (tenant, entity_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS temporal_types (
    tenant TEXT NOT NULL, type TEXT NOT NULL, entity_id TEXT NOT NULL,
    PRIMARY KEY (tenant, type, entity_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS temporal_series (
    sid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, entity_id TEXT NOT NULL,
    attribute TEXT NOT NULL, dataset_id TEXT NOT NULL DEFAULT '',
    UNIQUE (tenant, entity_id, attribute, dataset_id));
CREATE TABLE IF NOT EXISTS temporal_instances (
    sid INTEGER NOT NULL, t INTEGER NOT NULL, iid INTEGER NOT NULL,
    flags INTEGER NOT NULL, cre INTEGER, mod INTEGER, del INTEGER,
    num REAL, val BLOB, ext BLOB,
    PRIMARY KEY (sid, t, iid)) WITHOUT ROWID
"""

#: schema 13 (see :func:`create_tables`)
SERIES_BY_ATTRIBUTE = ("CREATE INDEX IF NOT EXISTS temporal_series_attribute"
                       " ON temporal_series (tenant, attribute)")

KINDS: tuple[str, ...] = tuple(MAIN_MEMBER)
_KIND_CODE = {kind: n for n, kind in enumerate(KINDS)}
OBSERVED = 1
_INTEGER = 32
_EXACT = 2**53
_TIMES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")

#: (sid, entity id, attribute, datasetId or None)
Series = tuple[int, str, str, str | None]
_COLUMNS = "t, iid, flags, cre, mod, del, num, val, ext"


def create_tables(conn: sqlite3.Connection) -> int:
    """Create the tables if needed, and bring those of an older version up to date; the
    next free instance number."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(rollups.SCHEMA)
    # Schema 13: the series of an attribute, for a query by attrs (:func:`with_attribute`);
    # created at open for an older file.  Keyed by the attribute alone (not the entity):
    # a new series' row goes to the end of its attribute's range (sids grow), so the
    # settling of a pack's series dirties few of its pages.
    conn.execute(SERIES_BY_ATTRIBUTE)
    # Issue 15: instances have no index on their number any more (one index row less a
    # recorded write; the instanceId operations find an instance within its series),
    # and the largest number in use is kept in meta.  A file of an older version has
    # the index: its largest number is read through it, then it goes.
    if conn.execute(f"SELECT 1 FROM meta WHERE key = '{_LAST_IID}'").fetchone() is None:
        (last,) = conn.execute("SELECT coalesce(max(iid), 0) FROM temporal_instances").fetchone()
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (_LAST_IID, str(last)))
    conn.execute("DROP INDEX IF EXISTS temporal_instance_id")
    return max_iid(conn) + 1


#: the meta key of the largest instance number in use or reserved
_LAST_IID = "temporal_last_iid"

#: instance numbers reserved at a time: the ``meta`` row is written once per this
#: many, not in every write transaction (one page less in most commits; a restart
#: continues after the reservation, leaving a gap in the numbers, never a reuse)
RESERVE = 1024


def max_iid(conn: sqlite3.Connection) -> int:
    """The largest instance number in use or reserved (0: none)."""
    return int(conn.execute("SELECT value FROM meta WHERE key = ?", (_LAST_IID,)).fetchone()[0])


def note_iid(conn: sqlite3.Connection, iid: int, memo: Memo | None = None) -> None:
    """In the transaction that writes instances numbered up to ``iid``: make sure the
    ``meta`` row covers it (the next start, and processes sharing the file, continue
    after it), reserving :data:`RESERVE` numbers more when it must be raised.  With
    the writer's ``memo``, a number within its reservation costs no statement."""
    if memo is not None and iid <= memo.reserved:
        return
    conn.execute("UPDATE meta SET value = ? WHERE key = ? AND CAST(value AS INTEGER) < ?",
                 (str(iid + RESERVE), _LAST_IID, iid))
    if memo is not None:
        memo.reserved = max_iid(conn)


@lru_cache(maxsize=65_536)
def _shortest(text: str) -> tuple[int, bool]:
    """(instant, whether ``text`` is its shortest form); the same stamps recur."""
    micros = millis_micros(text) if text.__class__ is str else None
    if micros is not None:  # a stamp of the broker's: shortest unless a whole second
        return micros, text[20:23] != "000"
    micros = to_micros(text)
    return micros, format_micros(micros) == text


def _micros(text: str | None, extra: dict[str, Any], key: str) -> int | None:
    if text is None:
        return None
    micros, shortest = _shortest(text)
    if not shortest:
        extra[key] = text  # keep the spelling the client or the broker wrote
    return micros


def encode(inst: Instance, iid: int) -> tuple[Any, ...]:
    """The columns (t, iid, flags, cre, mod, del, num, val, ext) of ``inst``."""
    return _columns(iid, inst.kind, inst.value, inst.members, inst.observed_at,
                    inst.created_at, inst.modified_at, inst.deleted_at)


def encode_internal(attribute: str, instance: Mapping[str, Any], iid: int) -> tuple[Any, ...]:
    """What :func:`encode` gives for ``from_internal(attribute, instance, ...)``, without
    the Instance (a batch records one per attribute it writes); BadRequestData as
    :func:`~ngsi_ld.temporal.model.from_internal`."""
    kind, value, members = split_internal(attribute, instance)
    get = instance.get
    return _columns(iid, kind, value, members, get("observedAt"), get("createdAt"),
                    get("modifiedAt"), get("deletedAt"))


def check_internal(attribute: str, instance: Mapping[str, Any]) -> int:
    """Raise now what :func:`encode_internal` would raise for ``instance`` (a packed write
    encodes it when it is settled, :mod:`.history_packs`); its ``t``, the instant its
    row is kept under.  A third of the encoding's cost: no members, no columns."""
    _check_kind(attribute, instance)
    get = instance.get
    return _instant(get("observedAt"), get("createdAt"), get("modifiedAt"), get("deletedAt"))


def least_checked(items: Iterable[tuple[str, Mapping[str, Any]]]) -> int | None:
    """The least :func:`check_internal` of the (attribute, instance) ``items``, each
    checked in order (None: no item).  The instances of one write carry the same stamps
    (it stamps all it writes with one text; a replaced entity's differ in createdAt
    only where an attribute is new): an instance whose four stamps equal those of the
    one before takes its ``t`` without reading them again (a new
    Streetlight's 21 checks 14.4 -> 6.6 µs)."""
    least: int | None = None
    seen: tuple[Any, ...] = ()
    for attribute, instance in items:
        _check_kind(attribute, instance)
        get = instance.get
        stamps = (get("observedAt"), get("createdAt"), get("modifiedAt"), get("deletedAt"))
        if stamps == seen:
            continue  # the same stamps (mostly the same objects): the same t, checked
        seen = stamps
        at = _instant(*stamps)
        if least is None or at < least:
            least = at
    return least


def _check_kind(attribute: str, instance: Mapping[str, Any]) -> None:
    """Raise BadRequestData, as the encoding would, for an instance without a known kind
    or without its kind's main member."""
    kind = instance.get("type")
    if not isinstance(kind, str) or (main := MAIN_MEMBER.get(kind)) is None \
            or main not in instance:
        split_internal(attribute, instance)  # raises BadRequestData, as the encoding would


def stamps_instant(created: Any, modified: Any) -> int | None:
    """The ``t`` :func:`check_internal` gives an instance of a known kind with its main
    member, stamped ``created`` and ``modified``, without observedAt or deletedAt (a
    replaced attribute, :mod:`.attribute_walk`); None where it would raise (it is then
    checked again, and raises in its place, in its order)."""
    try:
        return _instant(None, created, modified, None)
    except Exception:  # a stamp refused (or not even text)
        return None


@lru_cache(maxsize=4096)
def _instant(observed_at: str | None, created_at: str | None, modified_at: str | None,
             deleted_at: str | None) -> int:
    """The ``t`` of an instance of these stamps, each checked (BadRequestData) in the
    order :func:`_columns` reads them.  Cached as a whole: the instances of one write
    share their stamps (a replaced Streetlight's 18 took four lookups each)."""
    observed = None if observed_at is None else _shortest(observed_at)[0]
    created = None if created_at is None else _shortest(created_at)[0]
    modified = None if modified_at is None else _shortest(modified_at)[0]
    deleted = None if deleted_at is None else _shortest(deleted_at)[0]
    if observed is not None:
        return observed
    if modified is not None:
        return modified
    if deleted is not None:
        return deleted
    return created if created is not None else 0


def _columns(iid: int, kind: str, value: Any, members: Mapping[str, Any],
             observed_at: str | None, created_at: str | None, modified_at: str | None,
             deleted_at: str | None) -> tuple[Any, ...]:
    # One instance row per recorded attribute: the usual stamps (shortest form, no
    # observedAt) take the inlined path; any other spelling is kept in ``extra``.
    extra: dict[str, Any] = {}
    observed = created = modified = deleted = None
    if observed_at is not None:
        observed, shortest = _shortest(observed_at)
        if not shortest:
            extra["observedAt"] = observed_at
    if created_at is not None:
        created, shortest = _shortest(created_at)
        if not shortest:
            extra["createdAt"] = created_at
    if modified_at is not None:
        modified, shortest = _shortest(modified_at)
        if not shortest:
            extra["modifiedAt"] = modified_at
    if deleted_at is not None:
        deleted = _micros(deleted_at, extra, "deletedAt")
    flags = _KIND_CODE[kind] << 1
    if observed is not None:
        t = observed
        flags |= OBSERVED
    elif modified is not None:
        t = modified
    elif deleted is not None:
        t = deleted
    else:
        t = created if created is not None else 0
    num: float | None = None
    val: bytes | None = None
    kind_of_value = type(value)
    if kind_of_value is float:
        num = value
    elif kind_of_value is int and -_EXACT < value < _EXACT:
        num, flags = float(value), flags | _INTEGER
    elif kind_of_value is str or kind_of_value is dict or kind_of_value is list:
        val = orjson.dumps(value)
    elif isinstance(value, int) and not isinstance(value, bool) and -_EXACT < value < _EXACT:
        num, flags = float(value), flags | _INTEGER
    elif isinstance(value, float):
        num = value
    else:
        val = orjson.dumps(value)
    if extra:
        members = {**members, **extra}
    ext = orjson.dumps(members) if members else None
    return (t, iid, flags, None if created == modified else created, modified, deleted,
            num, val, ext)


def decode(attribute: str, dataset_id: str | None, row: Sequence[Any]) -> Instance:
    """The Instance of a row of :data:`_COLUMNS`."""
    t, iid, flags, cre, mod, dele, num, val, ext = row
    members: dict[str, Any] = {} if ext is None else orjson.loads(ext)
    texts = {key: members.pop(key) for key in _TIMES if key in members}
    if num is not None:
        value: Any = int(num) if flags & _INTEGER else num
    else:
        value = None if val is None else orjson.loads(val)
    created = cre if cre is not None else mod

    def text(key: str, micros: int | None) -> str | None:
        return texts.get(key) or (None if micros is None else format_micros(micros))

    return Instance(
        attribute=attribute,
        instance_id=f"{INSTANCE_PREFIX}{iid}",
        kind=KINDS[(flags >> 1) & 15],
        value=value,
        dataset_id=dataset_id,
        observed_at=text("observedAt", t if flags & OBSERVED else None),
        created_at=text("createdAt", created),
        modified_at=text("modifiedAt", mod),
        deleted_at=text("deletedAt", dele),
        members=members,
    )


# -- the Entity records ---------------------------------------------------------------
# The record's modifiedAt, written by every write until issue 15, is now written only
# when something else of the record changes (its types, createdAt, deletedAt): an
# update of a live Entity leaves the record's row alone (history_batch), and a read
# takes the later of the row's modifiedAt and the live Entity's (``entities.modified_at``,
# which that write did set).  Measured on a PATCH of one attribute: the record's
# UPDATE dirtied 0.8 of the 2.2 pages the history added to each write.
_RECORD_COLUMNS = "e.entity_id, e.types, e.created, e.modified, e.deleted, n.modified_at"
_RECORD_FROM = ("temporal_entities e LEFT JOIN entities n"
                " ON n.tenant = e.tenant AND n.id = e.entity_id")


def entity_record(conn: sqlite3.Connection, tenant: str, entity_id: str) -> EntityRecord | None:
    """The Entity record (its modifiedAt the live Entity's when that is later), or None."""
    row = conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM}"
        " WHERE e.tenant = ? AND e.entity_id = ?", (tenant, entity_id)).fetchone()
    return None if row is None else _record(row)


def later(stored: str | None, live: str | None) -> str | None:
    """The later of two modifiedAt stamps (``stored`` when they cannot be compared)."""
    if live is None or stored == live:
        return stored
    if stored is None:
        return live
    try:
        return live if _shortest(live)[0] > _shortest(stored)[0] else stored
    except (ValueError, BadRequestData):
        return stored


def _record(row: Sequence[Any]) -> EntityRecord:
    """The record of a row of ``_RECORD_COLUMNS`` (or of its first five columns: as stored)."""
    modified = row[3] if len(row) < 6 or row[4] is not None else later(row[3], row[5])
    return EntityRecord(row[0], tuple(orjson.loads(row[1])), row[2], modified, row[4])


def records(conn: sqlite3.Connection, tenant: str, ids: Sequence[str] | None,
            types: Sequence[str] | None) -> list[EntityRecord]:
    """The Entity records of ``ids`` (None: all) having one of ``types`` (None: any)."""
    if ids is None:
        where, args = "", []
        if types is not None:
            where = (" AND e.entity_id IN (SELECT entity_id FROM temporal_types"
                     f" WHERE tenant = ? AND type IN ({','.join('?' * len(types))}))")
            args = [tenant, *types]
        rows = conn.execute(f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM}"
                            f" WHERE e.tenant = ?{where} ORDER BY e.entity_id", (tenant, *args))
        return [_record(row) for row in rows]
    # by ids, ``_CHUNK`` a statement; the types tested per record, by the key of
    # ``temporal_types`` (an ``IN (SELECT ...)`` of the types' ids would first list
    # every Entity of the type: 100,000 Streetlights for each statement)
    where, args = "", []
    if types is not None:
        where = (" AND EXISTS (SELECT 1 FROM temporal_types t WHERE t.tenant = e.tenant"
                 f" AND t.type IN ({','.join('?' * len(types))}) AND t.entity_id = e.entity_id)")
        args = list(types)
    out: list[EntityRecord] = []
    chosen = sorted(ids)
    for first in range(0, len(chosen), _CHUNK):
        part = chosen[first:first + _CHUNK]
        rows = conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM} WHERE e.tenant = ?"
            f" AND e.entity_id IN ({','.join('?' * len(part))}){where} ORDER BY e.entity_id",
            (tenant, *part, *args))
        out.extend(_record(row) for row in rows)
    return out


def _put_record(conn: sqlite3.Connection, tenant: str, record: EntityRecord) -> None:
    # the usual write: the Entity keeps its types, only its stamps move (one statement)
    types = orjson.dumps(list(record.types))
    if conn.execute(
        "UPDATE temporal_entities SET created = coalesce(created, ?),"
        " modified = coalesce(?, modified), deleted = ?"
        " WHERE tenant = ? AND entity_id = ? AND types = ?",
        (record.created_at, record.modified_at, record.deleted_at, tenant, record.entity_id,
         types)).rowcount:
        return
    merged = merge_record(entity_record(conn, tenant, record.entity_id), record)
    conn.execute(
        "INSERT OR REPLACE INTO temporal_entities"
        " (tenant, entity_id, types, created, modified, deleted) VALUES (?, ?, ?, ?, ?, ?)",
        (tenant, merged.entity_id, orjson.dumps(list(merged.types)), merged.created_at,
         merged.modified_at, merged.deleted_at))
    conn.executemany(
        "INSERT OR IGNORE INTO temporal_types (tenant, type, entity_id) VALUES (?, ?, ?)",
        [(tenant, t, merged.entity_id) for t in record.types])


# -- writes ------------------------------------------------------------------------------
def series_id(conn: sqlite3.Connection, tenant: str, entity_id: str, attribute: str,
              dataset_id: str | None) -> int:
    """The series' sid, the series created if new."""
    key = (tenant, entity_id, attribute, dataset_id or "")
    row = conn.execute("SELECT sid FROM temporal_series WHERE tenant = ? AND entity_id = ?"
                       " AND attribute = ? AND dataset_id = ?", key).fetchone()
    if row is not None:
        return int(row[0])
    cursor = conn.execute("INSERT INTO temporal_series (tenant, entity_id, attribute, dataset_id)"
                          " VALUES (?, ?, ?, ?)", key)
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def write_history(conn: sqlite3.Connection, tenant: str, history: History, *,
                  upserting: bool = False, memo: Memo | None = None) -> None:
    """Record ``history``; ``upserting`` (the temporal API, 5.6.11): an instance with the
    key of a stored one replaces it (of several, the newest), keeping its instanceId and
    createdAt; ``memo``: the writer's (its instance-number reservation)."""
    _put_record(conn, tenant, history.entity)
    rows = []
    entity_id = history.entity.entity_id
    sids: dict[tuple[str, str | None], int] = {}
    for inst in history.instances:
        sid = sids.get(inst.series)
        if sid is None:
            sid = sids[inst.series] = series_id(conn, tenant, entity_id, *inst.series)
        iid = instance_number(inst.instance_id)
        assert iid is not None, "instanceIds of new instances come from the store"
        columns = encode(inst, iid)
        if upserting and inst.observed_at is not None:
            old = conn.execute(
                "SELECT iid, cre, mod FROM temporal_instances WHERE sid = ? AND t = ?"
                " AND flags & 1 ORDER BY iid DESC LIMIT 1", (sid, columns[0])).fetchone()
            if old is not None:
                conn.execute("DELETE FROM temporal_instances WHERE sid = ? AND t = ? AND iid = ?",
                             (sid, columns[0], old[0]))
                created = old[1] if old[1] is not None else old[2]
                columns = (columns[0], old[0], columns[2],
                           None if created == columns[4] else created, *columns[4:])
        rows.append((sid, *columns))
    conn.executemany(f"INSERT INTO temporal_instances (sid, {_COLUMNS})"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if rows:
        note_iid(conn, max(row[2] for row in rows), memo)
    if upserting:  # some replaced stored instances: their hours are rebuilt
        rollups.recompute(conn, [(row[0], row[1] // rollups.HOUR) for row in rows
                                 if row[3] & OBSERVED])
    else:
        rollups.add(conn, rows)


# -- reads --------------------------------------------------------------------------------
def series_rows(conn: sqlite3.Connection, tenant: str, entity_ids: Sequence[str],
                attributes: Sequence[str] | None) -> list[Series]:
    """The series of ``entity_ids``: of ``attributes`` (None: all) and the Scope."""
    where = [f"tenant = ? AND entity_id IN ({','.join('?' * len(entity_ids))})"]
    args: list[Any] = [tenant, *entity_ids]
    if attributes is not None:
        where.append(f"attribute IN ({','.join('?' * (len(attributes) + 1))})")
        args.extend([*attributes, SCOPE])
    rows = conn.execute("SELECT sid, entity_id, attribute, dataset_id FROM temporal_series"
                        f" WHERE {' AND '.join(where)} ORDER BY sid", args)
    return [(sid, eid, attr, ds or None) for sid, eid, attr, ds in rows]


#: entity ids per ``IN (...)`` list: well under SQLite's bound on parameters
_CHUNK = 500


def with_series(conn: sqlite3.Connection, tenant: str, entity_ids: Sequence[str],
                attributes: Sequence[str]) -> list[str]:
    """The Entities of ``entity_ids`` (in their order) that have a series of one of
    ``attributes``: the only ones a read of those attributes finds instances of once
    their packs are settled (by the ``UNIQUE`` index of the series, ``_CHUNK`` ids a
    statement)."""
    found: set[str] = set()
    names = ",".join("?" * len(attributes))
    for first in range(0, len(entity_ids), _CHUNK):
        part = entity_ids[first:first + _CHUNK]
        found.update(eid for (eid,) in conn.execute(
            "SELECT DISTINCT entity_id FROM temporal_series WHERE tenant = ?"
            f" AND entity_id IN ({','.join('?' * len(part))}) AND attribute IN ({names})",
            (tenant, *part, *attributes)))
    return [eid for eid in entity_ids if eid in found]


def with_attribute(conn: sqlite3.Connection, tenant: str,
                   attributes: Sequence[str]) -> set[str]:
    """The Entities with a series of one of ``attributes`` (by the index of schema 13:
    the series of an attribute, however many Entities the tenant has)."""
    return {eid for (eid,) in conn.execute(
        "SELECT entity_id FROM temporal_series INDEXED BY temporal_series_attribute"
        f" WHERE tenant = ? AND attribute IN ({','.join('?' * len(attributes))})",
        (tenant, *attributes))}


def read_series(conn: sqlite3.Connection, series: Series, query: TemporalQuery,
                per_series: int | None) -> list[Instance]:
    """The instances of one series; in the window and cut to ``per_series`` when the
    window is on observedAt (the clustered key), all of them otherwise."""
    sid, _, attribute, dataset_id = series
    sql = f"SELECT {_COLUMNS} FROM temporal_instances WHERE sid = ?"
    args: list[Any] = [sid]
    if query.timeproperty == "observedAt" and attribute != SCOPE:
        sql += " AND flags & 1"
        if query.lower is not None:
            sql += " AND t >= ?"
            args.append(query.lower)
        if query.upper is not None:
            sql += " AND t < ?"
            args.append(query.upper)
        if per_series is not None:
            if query.last_n is not None:
                # the last ones: the key (t, iid) backwards, the newest of an instant
                # first, given back oldest first as ``select`` keeps ties in the order
                # they came in (the instances of one instant in the order recorded)
                sql += " ORDER BY t DESC, iid DESC LIMIT ?"
                args.append(per_series)
                rows: list[Any] = conn.execute(sql, args).fetchall()
                return [decode(attribute, dataset_id, row) for row in rows[::-1]]
            sql += " ORDER BY t, iid LIMIT ?"
            args.append(per_series)
    return [decode(attribute, dataset_id, row) for row in conn.execute(sql, args)]


def find_instance(conn: sqlite3.Connection, tenant: str, entity_id: str, attribute: str,
                  iid: int) -> tuple[int, Instance] | None:
    """(sid, instance) of the instance numbered ``iid`` of the Attribute, or None."""
    row = conn.execute(
        f"SELECT s.sid, s.dataset_id, {', '.join('i.' + c for c in _COLUMNS.split(', '))}"
        " FROM temporal_instances i JOIN temporal_series s ON s.sid = i.sid"
        " WHERE i.iid = ? AND s.tenant = ? AND s.entity_id = ? AND s.attribute = ?",
        (iid, tenant, entity_id, attribute)).fetchone()
    if row is None:
        return None
    return row[0], decode(attribute, row[1] or None, row[2:])


#: the ``temporal_types`` rows of one entity (?2) of a tenant (?1).  The key is (tenant,
#: type, entity_id): a plain ``WHERE tenant = ? AND entity_id = ?`` reads every row of the
#: tenant (~3 ms an entity at 31,000 rows, benchmarks/README.md "schemacost"), so the
#: tenant's types are walked one seek each (the next type after the last, a loose index
#: scan) and the entity's row of each type is a lookup.  The rows deleted are the same:
#: ``type >= ''`` holds for every row (a TEXT column stores text or BLOBs, both from '' up).
_DELETE_TYPES = (
    "WITH RECURSIVE ty(t) AS ("
    "SELECT min(type) FROM temporal_types WHERE tenant = ?1 AND type >= ''"
    " UNION ALL SELECT (SELECT min(type) FROM temporal_types WHERE tenant = ?1 AND type > ty.t)"
    " FROM ty WHERE ty.t IS NOT NULL)"
    " DELETE FROM temporal_types WHERE tenant = ?1 AND entity_id = ?2"
    " AND type IN (SELECT t FROM ty WHERE t IS NOT NULL)"
)


def delete_entity(conn: sqlite3.Connection, tenant: str, entity_id: str) -> bool:
    """Forget one Entity's temporal evolution (5.6.16)."""
    found = conn.execute("DELETE FROM temporal_entities WHERE tenant = ? AND entity_id = ?",
                         (tenant, entity_id)).rowcount > 0
    conn.execute(_DELETE_TYPES, (tenant, entity_id))
    sids = [row[0] for row in conn.execute(
        "SELECT sid FROM temporal_series WHERE tenant = ? AND entity_id = ?", (tenant, entity_id))]
    _drop_series(conn, sids)
    return found


def _drop_series(conn: sqlite3.Connection, sids: Iterable[int]) -> None:
    for sid in sids:
        conn.execute("DELETE FROM temporal_instances WHERE sid = ?", (sid,))
        conn.execute("DELETE FROM temporal_series WHERE sid = ?", (sid,))
        rollups.drop_series(conn, sid)


def delete_attribute(conn: sqlite3.Connection, tenant: str, entity_id: str, attribute: str,
                     dataset_id: str | None, delete_all: bool) -> int:
    """5.6.13: the instances of every dataset (``delete_all``) or of one."""
    sql = "SELECT sid FROM temporal_series WHERE tenant = ? AND entity_id = ? AND attribute = ?"
    args: list[Any] = [tenant, entity_id, attribute]
    if not delete_all:
        sql += " AND dataset_id = ?"
        args.append("" if dataset_id in (None, "@none") else dataset_id)
    sids = [row[0] for row in conn.execute(sql, args)]
    removed = 0
    for sid in sids:
        removed += conn.execute("SELECT count(*) FROM temporal_instances WHERE sid = ?",
                                (sid,)).fetchone()[0]
    _drop_series(conn, sids)
    return removed
