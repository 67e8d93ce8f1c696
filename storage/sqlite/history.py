"""The temporal history of the embedded store (:class:`SqliteHistory`).

Writes run on the store's writer thread (the entity writes record their history in
their own SAVEPOINT or transaction, :meth:`SqliteHistory.record`), reads on its reader threads;
the SQL is in :mod:`.history_sql` and :mod:`.history_aggregate`.

A write of many attributes stores its instances packed, one row per write
(:mod:`.history_packs`).  Every operation below that reads or changes instances
first settles the packs of the Entities it concerns into their series (a write
job, only when the reader found packs of them), then runs on the series as
before; retention settles the packs holding instances before its cutoff.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from ngsi_ld.temporal import (
    SCOPE,
    Aggregation,
    EntityRecord,
    History,
    Instance,
    TemporalQuery,
)

from ..temporal import (
    INSTANCE_PREFIX,
    AggregatedHistory,
    TemporalHistory,
    instance_number,
    one_per_key,
)
from . import history_packs as packs
from . import history_rollups as rollups
from . import history_sql
from .history_aggregate import aggregate_sql, can_aggregate
from .history_batch import settle, settle_before, write_histories
from .history_memo import Memo
from .history_rows import EncodedHistory, OneInstance, encoded

__all__ = ["SqliteHistory"]

T = TypeVar("T")
Run = Callable[[Callable[[sqlite3.Connection], T]], Any]


#: Entities whose packs one writer transaction settles at most when a read needs those
#: of more (each transaction committed: the writes between them wait for one chunk, not
#: for all; a chunk's packs decoded at once, not all of them)
SETTLE_CHUNK = 500


class _Packed:
    """What a read found instead of its answer: the Entities with packed instances it
    needs, to settle first."""

    __slots__ = ("ids",)

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids


class SqliteHistory(TemporalHistory):
    """Temporal evolutions in the store's file (see the module docstring).

    ``read`` and ``write`` submit a function of a connection to the store's reader
    and writer threads.
    """

    def __init__(self, read: Run[Any], write: Run[Any]) -> None:
        self._read = read
        self._write = write
        self._ids: itertools.count[int] = itertools.count(1)
        #: the writer thread's memo of records and series ids (forget it on a rollback)
        self.memo = Memo()

    def open(self, conn: sqlite3.Connection) -> None:
        """On the writer thread at start-up: the tables, and the next instance number."""
        first = history_sql.create_tables(conn)
        packs.create(conn)
        self._ids = itertools.count(first)

    def new_instance_id(self) -> str:
        return f"{INSTANCE_PREFIX}{next(self._ids)}"

    def new_instance_number(self) -> int:
        """The number of a new instance (what :meth:`new_instance_id` names)."""
        return next(self._ids)

    def new_instance_numbers(self, count: int) -> int:
        """The first of ``count`` consecutive new instance numbers (a prepared pack's)."""
        first = next(self._ids)
        if count > 1:
            self._ids = itertools.count(first + count)
        return first

    def sync(self, conn: sqlite3.Connection) -> None:
        """On the writer thread, in a transaction: continue after the largest instance
        number in the file, which another process sharing it may have raised."""
        last = history_sql.max_iid(conn)
        if last != self.memo.reserved:  # raised by another writer: continue after it
            self._ids = itertools.count(last + 1)

    def record(self, conn: sqlite3.Connection, tenant: str,
               histories: Sequence[History | EncodedHistory | OneInstance],
               stamps: Mapping[str, str | None] | None = None) -> None:
        """On the writer thread, in the writes' transaction: what writes record, in the
        order they were made (one write or a batch's), as Histories or already encoded
        (:mod:`.history_rows`; a OneInstance its entity's only one); ``stamps``: the
        modifiedAt of each written entity's row after them (None: deleted)."""
        write_histories(conn, tenant, [h if not isinstance(h, History) else encoded(h)
                                       for h in histories], stamps, self.memo)

    # -- reads --------------------------------------------------------------------------
    async def _read_settled(self, tenant: str, entity_ids: Sequence[str],
                            run: Callable[[sqlite3.Connection, Sequence[str]], T],
                            attributes: Sequence[str] | None = None) -> T:
        """``run`` on a reader when the Entities ``entity_ids`` have no packed instances
        the read needs; else on the writer, in the transaction that first settles them.
        When more than :data:`SETTLE_CHUNK` Entities have such packs, theirs are first
        settled in transactions of that many Entities each, then the read is tried again
        on a reader: it answers there, or (packs written meanwhile) on the writer after
        settling those.  Either way ``run`` reads one snapshot in which every instance
        the read needs is in its series: what the read would have seen at that instant.

        ``attributes`` (None: all): the read's; it needs the packs that may hold one of
        them or the Scope (:mod:`.history_packs`, schema 12), the others stay packed, and
        ``run`` is given only the Entities with a series of one of them (a query by
        type and attrs over 100,000 Entities reads the hundred that have the attribute:
        the others' instances of it, none, are not part of its answer, 5.7.4.4)."""
        names = None if attributes is None else [*attributes, SCOPE]

        def narrowed(conn: sqlite3.Connection) -> Sequence[str]:
            if names is None:
                return entity_ids
            return history_sql.with_series(conn, tenant, entity_ids, names)

        def holding(conn: sqlite3.Connection) -> packs.Holding | None:
            # in the transaction that uses it: a write may add names to a signature
            return None if names is None else packs.Holding(conn, names)

        def read(conn: sqlite3.Connection) -> T | _Packed:
            found = packs.packed(conn, tenant, entity_ids, holding(conn))
            if found:
                return _Packed(found)
            return run(conn, narrowed(conn))

        def settled(conn: sqlite3.Connection) -> T:
            settle(conn, tenant, entity_ids, self.memo, holding(conn))
            return run(conn, narrowed(conn))

        def settled_part(part: Sequence[str]) -> Callable[[sqlite3.Connection], None]:
            return lambda conn: settle(conn, tenant, part, self.memo, holding(conn))

        found: T | _Packed = await self._read(read)
        if isinstance(found, _Packed) and len(found.ids) > SETTLE_CHUNK:
            for first in range(0, len(found.ids), SETTLE_CHUNK):
                await self._write(settled_part(found.ids[first:first + SETTLE_CHUNK]))
            found = await self._read(read)
        if isinstance(found, _Packed):
            result: T = await self._write(settled)
            return result
        return found

    async def temporal_entities(
        self, tenant: str, *, ids: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
    ) -> list[EntityRecord]:
        if (ids is not None and not ids) or (types is not None and not types):
            return []
        chosen = None if ids is None else list(dict.fromkeys(ids))
        wanted = None if types is None else list(dict.fromkeys(types))
        result: list[EntityRecord] = await self._read(
            lambda conn: history_sql.records(conn, tenant, chosen, wanted))
        return result

    async def entities_with(self, tenant: str, attributes: Sequence[str]) -> set[str] | None:
        """Schema 13: the Entities with a series of one of ``attributes`` or the Scope (the
        series' index by attribute) and those with a pack that may hold one of them
        (:class:`.history_packs.Holding`: the packs' index by signature, schema 14 the
        names of each signature): what :meth:`_read_settled` would narrow any set of
        Entities to, found without reading a record or a pack of the others."""
        names = [*attributes, SCOPE]

        def run(conn: sqlite3.Connection) -> set[str]:
            return history_sql.with_attribute(conn, tenant, names) | packs.with_packs(
                conn, tenant, packs.Holding(conn, names))

        found: set[str] = await self._read(run)
        return found

    async def read_history(
        self, tenant: str, entity_ids: Sequence[str], attributes: Sequence[str] | None,
        query: TemporalQuery, per_series: int | None = None,
    ) -> dict[str, list[Instance]]:
        if not entity_ids:
            return {}

        def run(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, list[Instance]]:
            out: dict[str, list[Instance]] = {}
            if not ids:
                return out
            for series in history_sql.series_rows(conn, tenant, ids, attributes):
                found = history_sql.read_series(conn, series, query, per_series)
                out.setdefault(series[1], []).extend(found)
            return out

        return await self._read_settled(tenant, entity_ids, run, attributes)

    async def aggregate_history(
        self, tenant: str, entity_ids: Sequence[str], attributes: Sequence[str] | None,
        query: TemporalQuery, aggregation: Aggregation,
    ) -> AggregatedHistory | None:
        if not entity_ids or not can_aggregate(query, aggregation):
            return None
        return await self._read_settled(tenant, entity_ids, lambda conn, ids: aggregate_sql(
            conn, tenant, ids, attributes, query, aggregation), attributes)

    # -- the temporal API's writes ------------------------------------------------------
    def upsert(self, conn: sqlite3.Connection, tenant: str,
               histories: Sequence[History]) -> None:
        """On the writer thread, in the caller's transaction: what :meth:`add_history`
        writes (the temporal API's instances, upserted)."""
        self.sync(conn)  # numbered here, in the transaction: no other writer between
        # an upserted instance replaces a stored one of the same key: packed ones too
        settle(conn, tenant, [h.entity.entity_id for h in histories], self.memo)
        for history in histories:
            self.memo.forget_entity(tenant, history.entity.entity_id)
            renumbered = replace(history, instances=tuple(
                replace(i, instance_id=self.new_instance_id())
                for i in one_per_key(history.instances)))
            history_sql.write_history(conn, tenant, renumbered, upserting=True,
                                      memo=self.memo)

    async def add_history(self, tenant: str, histories: Sequence[History]) -> None:
        await self._write(lambda conn: self.upsert(conn, tenant, histories))

    async def delete_history(self, tenant: str, entity_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            self.memo.forget_entity(tenant, entity_id)
            packs.delete_entity(conn, tenant, entity_id)
            return history_sql.delete_entity(conn, tenant, entity_id)

        found: bool = await self._write(run)
        return found

    async def delete_history_attribute(
        self, tenant: str, entity_id: str, attribute: str, dataset_id: str | None,
        delete_all: bool,
    ) -> int:
        def run(conn: sqlite3.Connection) -> int:
            settle(conn, tenant, [entity_id], self.memo)  # the count includes packed ones
            self.memo.forget_entity(tenant, entity_id)
            return history_sql.delete_attribute(
                conn, tenant, entity_id, attribute, dataset_id, delete_all)

        removed: int = await self._write(run)
        return removed

    async def history_instance(
        self, tenant: str, entity_id: str, attribute: str, instance_id: str
    ) -> Instance | None:
        iid = instance_number(instance_id)
        if iid is None:
            return None
        found = await self._read_settled(tenant, [entity_id], lambda conn, _: (
            history_sql.find_instance(conn, tenant, entity_id, attribute, iid)))
        return None if found is None else found[1]

    async def replace_history_instance(self, tenant: str, entity_id: str,
                                       instance: Instance) -> bool:
        iid = instance_number(instance.instance_id)
        if iid is None:
            return False

        def run(conn: sqlite3.Connection) -> bool:
            settle(conn, tenant, [entity_id], self.memo)
            found = history_sql.find_instance(conn, tenant, entity_id, instance.attribute, iid)
            if found is None:
                return False
            conn.execute("DELETE FROM temporal_instances WHERE sid = ? AND iid = ?",
                         (found[0], iid))
            columns = history_sql.encode(instance, iid)
            conn.execute(
                "INSERT INTO temporal_instances (sid, t, iid, flags, cre, mod, del, num, val, ext)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (found[0], *columns))
            old = history_sql.encode(found[1], iid)[0]
            rollups.recompute(conn, [(found[0], old // rollups.HOUR),
                                     (found[0], columns[0] // rollups.HOUR)])
            return True

        done: bool = await self._write(run)
        return done

    async def delete_history_instance(
        self, tenant: str, entity_id: str, attribute: str, instance_id: str
    ) -> bool:
        iid = instance_number(instance_id)
        if iid is None:
            return False

        def run(conn: sqlite3.Connection) -> bool:
            settle(conn, tenant, [entity_id], self.memo)
            found = history_sql.find_instance(conn, tenant, entity_id, attribute, iid)
            if found is None:
                return False
            conn.execute("DELETE FROM temporal_instances WHERE sid = ? AND iid = ?",
                         (found[0], iid))
            t = history_sql.encode(found[1], iid)[0]
            rollups.recompute(conn, [(found[0], t // rollups.HOUR)])
            return True

        done: bool = await self._write(run)
        return done

    async def drop_history_before(self, cutoff: int) -> int:
        # in batches, so that one sweep never holds the writer for long; first the packs
        # holding instances before the cutoff go into their series
        while await self._write(lambda conn: settle_before(conn, cutoff, self.memo)):
            pass
        total = 0
        def run(conn: sqlite3.Connection) -> int:
            removed: int = conn.execute(
                "DELETE FROM temporal_instances WHERE (sid, t, iid) IN (SELECT sid, t, iid"
                " FROM temporal_instances WHERE t < ? LIMIT 10000)", (cutoff,)).rowcount
            rollups.drop_before(conn, cutoff)
            return removed

        while True:
            removed: int = await self._write(run)
            total += removed
            if removed < 10000:
                return total
