"""What the writer thread remembers of the history's rows between writes (issue 15).

A recorded write needs the stored Entity record of each entity it writes (to merge
into it, or to see that only its modifiedAt moved) and the series id of each
instance; both were a SELECT in every write transaction.  They change only
through the writer thread of this store, or through another connection to the
file (another process sharing it, a loader).  So the writer keeps them here:

- rows it read or wrote in transactions, kept from one transaction to the next;
- all of it forgotten when ``PRAGMA data_version`` says another connection
  committed since the last look, when a transaction or a job's savepoint is rolled
  back (what it noted may not be in the file), and when it grows past
  :data:`LIMIT` entries;
- the entries of an entity forgotten by the temporal API's own writes and
  deletions (:mod:`.history`);
- ``reserved``: the instance numbers up to it are this writer's to give (the
  ``meta`` row it raised, :func:`.history_sql.note_iid`), so a write numbered below
  it leaves ``meta`` alone; forgotten (0) with the rest.
- ``pack_names``: the names of each pack signature the file holds (schema 14,
  :mod:`.pack_names`), forgotten with the rest (read again from the file as needed);
- ``packs``: how this writer compresses packs (:mod:`.pack_codec`), never forgotten:
  its dictionary stays valid (every transaction that uses it stores it).

Measured before: the two SELECTs were about a sixth of what the history's SQL
cost a PATCH of one attribute in the broker.
"""

from __future__ import annotations

import sqlite3

from ngsi_ld.temporal import EntityRecord

from .pack_codec import PackCodec

__all__ = ["LIMIT", "Memo", "SeriesKey"]

#: entities (with a record or series noted) kept at most, then all forgotten
LIMIT = 200_000

#: (entity id, attribute, datasetId or "")
SeriesKey = tuple[str, str, str]


class Memo:
    """The stored records and series ids of one store's file, for its writer thread."""

    __slots__ = ("_records", "_series", "_version", "pack_names", "packs", "reserved")

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], EntityRecord] = {}
        #: per (tenant, entity id): (attribute, datasetId or "") -> sid
        self._series: dict[tuple[str, str], dict[tuple[str, str], int]] = {}
        self._version: int | None = None
        #: the largest instance number this writer reserved in ``meta`` (0: unknown)
        self.reserved = 0
        #: the names of each pack signature in the file (None: any), :mod:`.pack_names`
        self.pack_names: dict[int, frozenset[str] | None] = {}
        #: the compression of the packs this writer stores
        self.packs = PackCodec()

    def check(self, conn: sqlite3.Connection) -> None:
        """In a write transaction, before using the memo: forget everything if another
        connection committed to the file since the last check."""
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        if version != self._version or len(self._records) + len(self._series) + len(
                self.pack_names) > LIMIT:
            self.forget()
            self._version = version

    def forget(self) -> None:
        """Forget everything (a rollback, another writer)."""
        self._records.clear()
        self._series.clear()
        self.pack_names.clear()
        self.reserved = 0

    def forget_entity(self, tenant: str, entity_id: str) -> None:
        """Forget one entity's record and series (the temporal API changed them)."""
        self._records.pop((tenant, entity_id), None)
        self._series.pop((tenant, entity_id), None)

    def record(self, tenant: str, entity_id: str) -> EntityRecord | None:
        """The stored record, if known (None: not known, not that there is none)."""
        return self._records.get((tenant, entity_id))

    def note_record(self, tenant: str, record: EntityRecord) -> None:
        """``record`` is the row stored now."""
        self._records[tenant, record.entity_id] = record

    def sid(self, tenant: str, key: SeriesKey) -> int | None:
        """The series id, if known."""
        known = self._series.get((tenant, key[0]))
        return None if known is None else known.get(key[1:])

    def note_sid(self, tenant: str, key: SeriesKey, sid: int) -> None:
        """Series ``key`` is stored with id ``sid``."""
        self._series.setdefault((tenant, key[0]), {})[key[1:]] = sid
