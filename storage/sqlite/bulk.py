"""The rows of many entity writes, written table by table in multi-row INSERTs.

A batch (``SqliteStore.modify_many``) runs its mutations in Python first, then
hands the net change of each entity (its state before the batch, its state
after) to :class:`Rows`, which computes what every table needs (the
``entities`` row, the differences of the ``entity_types`` and ``attr_values``
index rows keyed by the numbers of ``sqlite_names``, the
R*Tree boxes, the discovery counters) and writes them table by table: at 100
Streetlights a request, one statement per table instead of seven per entity
(the inserts 64 rows a statement, :mod:`.inserts`).
A single write is a batch of one.

Rows are deleted before they are inserted, table by table, so an entity whose
index rows change in place ends with exactly the new rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from itertools import chain
from operator import itemgetter
from types import EllipsisType
from typing import Any

import orjson

from ngsi_ld.expiry import earliest_expiry

from ..base import Entity
from ..discovery import StatKey, add_stats, stats_delta
from ..helpers import entity_types
from ..prepared import PreparedCreation
from . import index as sqlite_index
from . import names as sqlite_names
from . import stats as sqlite_stats
from .attribute_walk import changed_names
from .inserts import insert_rows
from .prepared import creation_shape

_UPSERT_ENTITY = (
    "INSERT INTO entities (tenant, id, doc, created_at, modified_at, version, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO UPDATE SET"
    " doc = excluded.doc, created_at = excluded.created_at,"
    " modified_at = excluded.modified_at, version = excluded.version,"
    " expires_at = excluded.expires_at"
)
_INSERT_VALUE = "INSERT OR IGNORE INTO attr_values (attr, id, val, vocab) VALUES (?, ?, ?, ?)"
_KEYS = (("entity_types", "type"),)
#: the version of the next entity written (``sql.next_version``)
Version = Callable[[sqlite3.Connection], int]


#: the sort key of ``attr_values`` rows, (attr, id): in C, called once a row
_row_key = itemgetter(0, 1)
#: the sort key of prepared creations' value rows, (id, flat rows): the id
_entity_key = itemgetter(0)


def expiry_of(entity: Entity, doc: bytes) -> int | None:
    """When the first part of ``entity`` (encoded: ``doc``) expires, clause 4.22 (the
    ``expires_at`` column, the ``Change.expires`` of its write)."""
    # most entities are not transient, which one byte search tells (find, not ``in``:
    # ``bytes in bytes`` first tries the operand as an integer, and formats and drops
    # a TypeError each time, ~1,800 instructions in CPython 3.11)
    return earliest_expiry(entity) if doc.find(b'"expiresAt"') >= 0 else None


class Rows:
    """What a set of entity writes of one tenant changes in every table (see the module)."""

    __slots__ = (
        "_boxes", "_deleted", "_geo_cleared", "_keys_in", "_keys_out", "_prepared_attrs",
        "_prepared_stats", "_prepared_values", "_tenant", "_upserts", "_values_in",
        "_values_out", "stats",
    )

    def __init__(self, tenant: str) -> None:
        self._tenant = tenant
        #: (id, doc, created, modified, expires) of the entities written
        self._upserts: list[tuple[str, bytes, str | None, str | None, int | None]] = []
        self._deleted: list[tuple[str, str]] = []
        #: per index table: (key, id) rows to delete / insert (the key a name, written
        #: as its number of sqlite_names)
        self._keys_out: dict[str, list[tuple[str, str]]] = {t: [] for t, _ in _KEYS}
        self._keys_in: dict[str, list[tuple[str, str]]] = {t: [] for t, _ in _KEYS}
        #: (attribute, id, value, vocab) rows to delete / insert
        self._values_out: list[tuple[str, str, object, int]] = []
        self._values_in: list[tuple[str, str, object, int]] = []
        #: entities whose boxes are rewritten, and their new boxes
        self._geo_cleared: list[tuple[str, str]] = []
        self._boxes: list[tuple[str, str, float, float, float, float]] = []
        #: the discovery counters' change (sqlite_stats)
        self.stats: dict[StatKey, int] = {}
        #: the counters' changes of creations, by tuple: [it, how many]
        self._prepared_stats: dict[int, list[Any]] = {}
        #: the value rows of creations: (id, its flat rows), and their attribute names by
        #: tuple (entities of one shape share theirs: each read once)
        self._prepared_values: list[tuple[str, Sequence[Any]]] = []
        self._prepared_attrs: dict[int, tuple[str, ...]] = {}

    def add(
        self, entity_id: str, before: Entity | None, after: Entity | None,
        doc: bytes | None = None, names: set[str] | None = None,
        expires: int | EllipsisType | None = ...,
    ) -> None:
        """Note the write of one entity from ``before`` to ``after`` (None: absent);
        ``doc``: ``after`` already encoded, ``names``: its :func:`.attribute_walk.changed_names`,
        ``expires``: its :func:`expiry_of`, if the caller has them (a creation's names are
        all its attributes: not read)."""
        tenant = self._tenant
        if after is None:
            if before is None:
                return
            self._deleted.append((tenant, entity_id))
        else:
            created, modified = after.get("createdAt"), after.get("modifiedAt")
            if doc is None:
                doc = orjson.dumps(after)
            if expires is ...:
                expires = expiry_of(after, doc)
            self._upserts.append((
                entity_id, doc, created if isinstance(created, str) else None,
                modified if isinstance(modified, str) else None, expires,
            ))
        if before is None and after is not None:
            self._add_created(entity_id, after)
            return
        old_doc: Any = before  # read as they are (compiled, a TypedDict's .get() checks)
        new_doc: Any = after
        if before is None or after is None or old_doc.get("type") != new_doc.get("type"):
            self._key_rows("entity_types", entity_id,
                           entity_types(before) if before is not None else set(),
                           entity_types(after) if after is not None else set())
            usual = None
        else:  # types kept: the usual update of values, told in one pass
            if names is None:
                names = changed_names(before, after)
            usual = sqlite_index.usual_update(before, after, names)
        if usual is not None:  # no box, no counter moved (usual_update)
            self._values_out.extend([(a, entity_id, v, k) for a, v, k in usual[0]])
            self._values_in.extend([(a, entity_id, v, k) for a, v, k in usual[1]])
            return
        if names is None:
            names = changed_names(before, after)
        add_stats(self.stats, stats_delta(before, after, names))
        if not names:
            return
        # the attributes' names are in their value rows (sqlite_index.MARKER)
        old = sqlite_index.value_rows(before, names)
        new = sqlite_index.value_rows(after, names)
        self._values_out.extend((a, entity_id, v, k) for a, v, k in old - new)
        self._values_in.extend((a, entity_id, v, k) for a, v, k in new - old)
        if sqlite_index.geo_boxes(before, names) == sqlite_index.geo_boxes(after, names):
            return  # the other attributes' boxes did not change either
        # The geometries of an entity are rewritten together.
        self._geo_cleared.append((tenant, entity_id))
        self._boxes.extend((entity_id, *box) for box in sqlite_index.geo_boxes(after))

    def _add_created(self, entity_id: str, after: Entity) -> None:
        """The index rows and counters of the entity created as ``after``: its types,
        attribute names and counters' change are its shape's (:func:`.prepared.creation_shape`,
        computed once a shape), its values and boxes all new."""
        types, attrs, stats = creation_shape(after)
        if types:
            self._keys_in["entity_types"].extend([(key, entity_id) for key in types])
        self._count_stats(stats)
        if not attrs:
            return
        # the attributes' names are in their value rows (sqlite_index.MARKER): kept flat
        # as a prepared creation's, numbered and put in index order with them (write)
        rows, boxes = sqlite_index.creation_rows(after)
        self._note_values(entity_id, rows, attrs)
        if boxes:
            self._boxes.extend([(entity_id, *box) for box in boxes])

    def _count_stats(self, stats: tuple[tuple[StatKey, int], ...]) -> None:
        """Count a creation's counters' change, a tuple that entities of one shape share
        (added once each in :meth:`write`)."""
        shared = self._prepared_stats.get(id(stats))
        if shared is None:
            self._prepared_stats[id(stats)] = [stats, 1]
        else:
            shared[1] += 1

    def add_prepared(self, created: PreparedCreation) -> None:
        """Note the write of an entity where there was none, from its prepared rows
        (:mod:`.prepared`): what :meth:`add` notes for it."""
        entity_id = created.entity_id
        self._upserts.append((entity_id, created.doc, created.created, created.modified,
                              created.expires))
        if created.types:
            self._keys_in["entity_types"].extend([(key, entity_id) for key in created.types])
        # entities of one type and attributes share their tuple (storage.sqlite.prepared)
        self._count_stats(created.stats)
        if created.values:
            self._note_values(entity_id, created.values, created.attrs)
        self._boxes.extend(created.boxes)

    def _note_values(self, entity_id: str, flat: Sequence[Any], attrs: tuple[str, ...]) -> None:
        """Note the value rows of a created entity, ``flat`` (attribute, value, vocab,
        attribute...); ``attrs``: its attribute names, a tuple that entities of one shape
        share (every attribute has a value row, a marker at least: these are their
        names, each tuple read once in :meth:`_names`)."""
        self._prepared_values.append((entity_id, flat))
        self._prepared_attrs[id(attrs)] = attrs

    def _key_rows(self, table: str, entity_id: str, old: set[str], new: set[str]) -> None:
        # Only the difference is written: most updates change values, not names.
        if old == new:
            return
        self._keys_out[table].extend((key, entity_id) for key in old - new)
        self._keys_in[table].extend((key, entity_id) for key in new - old)

    def write(self, conn: sqlite3.Connection, version: Version) -> None:
        """Write every row (inside the caller's transaction); ``version`` numbers the
        entities written."""
        tenant = self._tenant
        if self._deleted:
            conn.executemany("DELETE FROM entities WHERE tenant = ? AND id = ?", self._deleted)
        if self._upserts:
            insert_rows(conn, _UPSERT_ENTITY, [
                (tenant, entity_id, doc, created, modified, version(conn), expires)
                for entity_id, doc, created, modified, expires in sorted(self._upserts)
            ])
        nids = self._names(conn)
        for table, column in _KEYS:
            if self._keys_out[table]:
                conn.executemany(
                    f"DELETE FROM {table} WHERE {column} = ? AND id = ?",
                    [(nids[key], i) for key, i in self._keys_out[table]],
                )
            if self._keys_in[table]:
                # in key order: the B-tree is filled page by page
                insert_rows(
                    conn, f"INSERT OR IGNORE INTO {table} ({column}, id) VALUES (?, ?)",
                    sorted([(nids[key], i) for key, i in self._keys_in[table]]),
                )
        if self._values_out:
            conn.executemany(
                "DELETE FROM attr_values WHERE attr = ? AND id = ? AND val = ? AND vocab = ?",
                [(nids[a], i, v, k) for a, i, v, k in self._values_out],
            )
        if self._values_in:
            rows = [(nids[a], i, v, k) for a, i, v, k in self._values_in]
            rows.extend(self._prepared_rows(nids))
            rows.sort(key=_row_key)
            insert_rows(conn, _INSERT_VALUE, rows)
        elif self._prepared_values:
            insert_rows(conn, _INSERT_VALUE, self._prepared_rows(nids, in_order=True))
        self._write_boxes(conn)
        for delta, times in self._prepared_stats.values():
            add_stats(self.stats, {key: n * times for key, n in delta})
        sqlite_stats.add(conn, tenant, self.stats)

    def _prepared_rows(self, nids: dict[str, int], *,
                       in_order: bool = False) -> list[tuple[int, str, object, int]]:
        """The ``attr_values`` rows of the prepared creations; ``in_order``: sorted as
        ``sorted(rows, key=_row_key)`` would sort them: the entities in id order, their
        rows put in one list per name number (two sorts of a few keys, both stable)."""
        prepared = self._prepared_values
        if not in_order:
            rows: list[tuple[int, str, object, int]] = []
            for entity_id, flat in prepared:
                it = iter(flat)
                rows.extend([(nids[a], entity_id, v, k)
                             for a, v, k in zip(it, it, it, strict=True)])
            return rows
        by_name: dict[int, list[tuple[int, str, object, int]]] = {}
        for entity_id, flat in sorted(prepared, key=_entity_key):
            it = iter(flat)
            for a, v, k in zip(it, it, it, strict=True):
                number = nids[a]
                same = by_name.get(number)
                if same is None:
                    same = by_name[number] = []
                same.append((number, entity_id, v, k))
        return list(chain.from_iterable(by_name[number] for number in sorted(by_name)))

    def _names(self, conn: sqlite3.Connection) -> dict[str, int]:
        """The numbers of every name the index rows of this batch are keyed by."""
        wanted = {a for a, _, _, _ in self._values_out}
        wanted.update(a for a, _, _, _ in self._values_in)
        for attrs in self._prepared_attrs.values():
            wanted.update(attrs)
        for table, _ in _KEYS:
            wanted.update(key for key, _ in self._keys_out[table])
            wanted.update(key for key, _ in self._keys_in[table])
        return sqlite_names.ids(conn, self._tenant, wanted) if wanted else {}

    def _write_boxes(self, conn: sqlite3.Connection) -> None:
        if self._geo_cleared:
            conn.executemany(
                "DELETE FROM geo_rtree WHERE id IN"
                " (SELECT rid FROM geo_rows WHERE tenant = ? AND id = ?)",
                self._geo_cleared,
            )
            conn.executemany("DELETE FROM geo_rows WHERE tenant = ? AND id = ?",
                             self._geo_cleared)
        if not self._boxes:
            return
        # The row ids are taken here, in the write transaction that holds the file's
        # write lock: no other writer can take the same ones.
        (last,) = conn.execute("SELECT COALESCE(MAX(rid), 0) FROM geo_rows").fetchone()
        rids = range(last + 1, last + 1 + len(self._boxes))
        tenant = self._tenant
        insert_rows(
            conn, "INSERT INTO geo_rows (rid, tenant, id, attr) VALUES (?, ?, ?, ?)",
            [(rid, tenant, box[0], box[1]) for rid, box in zip(rids, self._boxes, strict=True)],
        )
        insert_rows(
            conn, "INSERT INTO geo_rtree (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)",
            [(rid, *box[2:]) for rid, box in zip(rids, self._boxes, strict=True)],
        )


__all__ = ["Rows"]
