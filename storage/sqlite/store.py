"""The embedded SQLite store (``sqlite:path``), the broker's default backend.

Threads, so that no SQLite call ever blocks the event loop:

* one writer thread owns the only write connection.  Every write is a job on
  its queue; the jobs queued at the same moment run in ONE transaction (group
  commit), each inside its own SAVEPOINT so that a job that fails is rolled
  back alone (a transaction of one job or one group runs without one, and is
  rolled back whole if it fails: ``threads``); the single entity writes of one
  tenant queued together run as one batch (``writes.write_all``, the path of
  ``modify_many`` too: one statement per table, a mutation that raises is that
  write's error alone).
  A caller's future is resolved only after the COMMIT.  Because
  all writes are serialised there, :meth:`SqliteStore.modify` (read, apply the
  mutation, write) is atomic.
* a small pool of reader threads, each with its own connection; WAL lets them
  read the last committed state while the writer writes, so reads never wait
  for writes.

The thread machinery is in ``sqlite_threads``, the SQL in ``sqlite_sql``.

Durability: WAL journal with ``synchronous=NORMAL``.  A COMMIT has written the
WAL pages to the operating system before the writer acknowledges it, so a write
the broker acknowledged survives the process being killed, even by SIGKILL; a
power loss or OS crash may lose the last transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ngsi_ld.errors import ServiceUnavailable
from ngsi_ld.query import EntityQuery
from ngsi_ld.temporal import History

from ..base import (
    DEFAULT_TENANT,
    Change,
    ContextRecord,
    Entity,
    Mutation,
    Outcome,
    Recorder,
    Store,
)
from ..chain import WriteChain
from ..discovery import (
    AttributeSummary,
    TypeSummary,
    attributes_from_stats,
    types_from_stats,
)
from ..helpers import as_ngsi_error, check_page
from ..prepared import PreparedCreation
from ..sharing import CONTEXT, RECORD
from ..versioned import Versioned, Wanted
from . import feed, sql, stats
from .checkpoint import WRITER_PAGES, Checkpointer
from .execute import run_query, run_query_versioned
from .history import SqliteHistory
from .index import distinct_keys
from .prepared import prepare_creation
from .shared import SharedMixin
from .threads import Worker
from .wal import WalIndexView
from .writes import Result, write_all

T = TypeVar("T")
#: the writer's page cache of a store opened for a bulk load (``bulk``), in KiB: a load's
#: transaction of thousands of entities then touches pages it holds, instead of reading
#: them again from the file (a broker keeps SQLite's 2 MB: its RSS matters, and its
#: transactions are small; a 64 MiB cache grew a write-heavy broker by ~70 MB)
BULK_CACHE_KIB = 64 * 1024


class SqliteStore(SharedMixin, Store):
    """Entities, tenants and contexts in one SQLite file (see the module docstring)."""

    kind = "sqlite"
    #: one writer thread: the batch it writes and the next one (broker/service/gate.py)
    batches_in_flight = 2
    #: storage.prepared.PreparedWrites: a creation's rows, prepared without a connection
    prepare = staticmethod(prepare_creation)

    def __init__(self, path: str | Path, *, readers: int = 2, bulk: bool = False) -> None:
        """The store in the file ``path``: ``readers`` reading threads; ``bulk``: opened
        by a process that loads data (``ngsi-ld-broker load``), its writer's page cache
        larger."""
        self.path = Path(path)
        self._writer = Worker(self.path, writer=True)
        if bulk:  # a load's process: large transactions, memory no concern
            self._writer.cache_kib = BULK_CACHE_KIB
        self._readers = Worker(self.path, writer=False, threads=readers)
        self._open = False
        self._known_tenants: set[str] = {DEFAULT_TENANT}
        self._wal_index = WalIndexView(self.path)
        # WAL checkpoints on their own thread, not in the writer's COMMITs; the writer
        # reads the WAL's size through a view of its own (one view, one thread)
        self._frames_view = WalIndexView(self.path)
        self._checkpointer = Checkpointer(self.path, self._frames_view.header)
        self._writer.commit_listeners.append(self._checkpointer.committed)
        self._writer.autocheckpoint = WRITER_PAGES
        # Set by share(): changes are also appended to the feed (see sqlite_feed).
        self._origin: str | None = None
        self._history = SqliteHistory(self._read, self._write)
        self._writer.rollback_listeners.append(self._history.memo.forget)

    @property
    def history(self) -> SqliteHistory:
        """The temporal history, in the same file (docs/temporal.md 3.3)."""
        return self._history

    @property
    def commit_count(self) -> int:
        """Write transactions committed so far (each carries one or more writes)."""
        return self._writer.batch_count

    @property
    def job_count(self) -> int:
        """Writes (jobs of the writer thread) committed or refused so far."""
        return self._writer.job_count

    # -- life cycle ----------------------------------------------------------------
    async def open(self) -> None:
        """Create the file (and its directory) and the schema; start the threads."""
        if self._open:
            return
        try:
            await self._writer.start()
            await self._writer.submit(self._history.open)
            if self._origin is not None:
                await self._writer.submit(feed.create_tables)
            await self._readers.start()
            self._checkpointer.start()
        except (OSError, sqlite3.Error) as exc:
            await asyncio.to_thread(self._checkpointer.stop)
            await self._readers.stop()
            await self._writer.stop()
            raise ServiceUnavailable(f"cannot open the SQLite store {self.path}: {exc}") from exc
        self._open = True

    async def close(self) -> None:
        """Finish the queued work, stop the threads and close every connection."""
        if not self._open:
            return
        self._open = False
        await asyncio.to_thread(self._checkpointer.stop)
        await self._readers.stop()
        await self._writer.stop()
        self._wal_index.close()
        self._frames_view.close()

    async def health(self) -> dict[str, Any]:
        """Run a trivial query on the writer thread; ServiceUnavailable if it fails."""
        version = await self._write(
            lambda conn: conn.execute("SELECT sqlite_version()").fetchone()[0]
        )
        return {"kind": self.kind, "path": str(self.path), "sqlite": version}

    # _write and _read give the worker's future (no coroutine of their own: one frame
    # less per read); a closed store raises when called, the callers await at once
    def _write(self, run: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if not self._open:
            raise ServiceUnavailable(f"the SQLite store {self.path} is not open")
        return self._writer.submit(run)

    def _read(self, run: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if not self._open:
            raise ServiceUnavailable(f"the SQLite store {self.path} is not open")
        return self._readers.submit(run)

    # -- tenants -----------------------------------------------------------------
    async def tenant_exists(self, tenant: str) -> bool:
        """True for the default tenant and every tenant created so far."""
        if tenant in self._known_tenants:
            return True
        found = await self._read(lambda conn: sql.tenant_row_exists(conn, tenant))
        if found:
            self._known_tenants.add(tenant)
        return found

    async def ensure_tenant(self, tenant: str) -> None:
        """Create the tenant if it does not exist."""
        if tenant not in self._known_tenants:
            await self._write(lambda conn: sql.insert_tenant(conn, tenant))
            self._known_tenants.add(tenant)

    async def list_tenants(self) -> list[str]:
        """Every tenant but the default one, sorted."""
        return await self._read(sql.tenant_names)

    # -- entities ----------------------------------------------------------------
    async def get_entity(self, tenant: str, entity_id: str) -> Entity | None:
        """The stored entity, or None."""
        doc = await self._read(lambda conn: sql.read_doc(conn, tenant, entity_id))
        return None if doc is None else orjson.loads(doc)

    def _apply(
        self, conn: sqlite3.Connection, tenant: str, entity_id: str, mutation: Mutation,
        record: Recorder | None = None, posted: Sequence[History] = (),
    ) -> Change:
        # Runs on the writer thread, inside the job's SAVEPOINT: the posted history,
        # the entity and its recorded history are one transaction.
        if posted:
            self._history.upsert(conn, tenant, posted)
        ((ok, value),) = write_all(conn, tenant, [(entity_id, mutation, record)],
                                   self._history, self._origin, wants=self.wants_before)
        if not ok:
            raise value
        change: Change = value
        return change

    def _apply_group(self, conn: sqlite3.Connection, jobs: list[Any]) -> list[Result]:
        # Runs on the writer thread: the single writes of one tenant queued together,
        # written as one batch (storage/sqlite/writes.py); see Worker.submit.
        tenant = jobs[0][0]
        return write_all(conn, tenant, [item for _, item in jobs], self._history,
                         self._origin, wants=self.wants_before)

    async def due_expiries(self, now: int, limit: int) -> list[tuple[str, str]]:
        """The entities a part of which expired at ``now`` (ms), earliest first."""
        return await self._read(lambda conn: sql.due_expiries(conn, now, limit))

    async def next_expiry(self) -> int | None:
        """When the first part of any entity expires (ms), or None."""
        return await self._read(sql.next_expiry)

    async def modify(self, tenant: str, entity_id: str, mutation: Mutation, *,
                     record: Recorder | None = None,
                     posted: Sequence[History] = ()) -> Change:
        """Apply ``mutation`` to one entity atomically, with the ``posted`` history in the
        same transaction; what it raises propagates (and nothing is written)."""
        if not self._open:
            raise ServiceUnavailable(f"the SQLite store {self.path} is not open")
        run = partial(self._apply, tenant=tenant, entity_id=entity_id, mutation=mutation,
                      record=record, posted=posted)
        if posted:
            change: Change = await self._writer.submit(run)
        else:  # groupable with the other single writes of this tenant queued with it
            change = await self._writer.submit(
                run, group=self._apply_group, key=(id(self), tenant),
                item=(tenant, (entity_id, mutation, record)))
        if change.after is not None:
            self._known_tenants.add(tenant)
        return change

    async def modify_many(
        self, tenant: str, mutations: Sequence[tuple[str, Mutation]], *,
        record: Recorder | None = None,
    ) -> list[Outcome]:
        """Apply each mutation in order in one transaction, each whole or not at all."""
        return await self.modify_prepared(tenant, mutations, {}, record=record)

    async def modify_prepared(
        self, tenant: str, mutations: Sequence[tuple[str, Mutation]],
        prepared: Mapping[str, PreparedCreation], *, record: Recorder | None = None,
        chain: WriteChain | None = None,
    ) -> list[Outcome]:
        """:meth:`modify_many`, the creations of ``prepared`` stored from their rows, as
        the next write of ``chain`` if given (:class:`storage.prepared.PreparedWrites`;
        the loader's)."""
        items = list(mutations)

        def run(conn: sqlite3.Connection) -> list[Outcome]:
            results = write_all(conn, tenant, [(i, m, record) for i, m in items],
                                self._history, self._origin, prepared, self.wants_before)
            return [Outcome(i, change=value) if ok
                    else Outcome(i, error=as_ngsi_error(i, value))
                    for (i, _), (ok, value) in zip(items, results, strict=True)]

        if not items:
            return []
        outcomes = await self._write(run if chain is None else self._writer.chained(run, chain))
        if any(o.error is None and (o.change is None or o.change.exists)
               for o in outcomes):
            self._known_tenants.add(tenant)
        return outcomes

    async def query_entities(
        self,
        tenant: str,
        query: EntityQuery,
        *,
        offset: int = 0,
        limit: int | None = None,
        count: bool = False,
    ) -> tuple[list[Entity], int | None]:
        """Matching entities sorted by id, paged; indexes first, then ``matches`` (sqlite_query)."""
        check_page(offset, limit)
        return await self._read(lambda conn: run_query(conn, tenant, query, offset, limit, count))

    # -- versioned reads (see versioned.VersionedReads) ------------------------------
    async def read_versioned(self, tenant: str, entity_id: str) -> Versioned | None:
        """The entity with its version (``entities.version``), not decoded yet, or None."""
        return await self._read(lambda conn: sql.read_versioned(conn, tenant, entity_id))

    async def query_versioned(
        self,
        tenant: str,
        query: EntityQuery,
        wanted: Wanted,
        *,
        offset: int = 0,
        limit: int | None = None,
        count: bool = False,
    ) -> tuple[list[Versioned], int | None]:
        """As :meth:`query_entities` with versions; documents only where ``wanted`` says."""
        check_page(offset, limit)
        return await self._read(
            lambda conn: run_query_versioned(conn, tenant, query, offset, limit, count, wanted)
        )

    def data_version(self, tenant: str) -> Hashable | None:
        """This process's write count and the WAL index header (48 bytes of ``-shm``).

        The header holds the commit counter, the last frame and the WAL salts, so
        it changes with every commit, also by other broker processes on this file.
        """
        if not self._open:
            return None
        header = self._wal_index.header()
        if header is None:
            return None
        return self._writer.job_count, header

    async def type_names(self, tenant: str) -> list[str]:
        """Every entity type with at least one entity, sorted, from the type index."""
        return await self._read(lambda conn: distinct_keys(conn, "entity_types", tenant))

    async def attribute_names(self, tenant: str) -> list[str]:
        """Every attribute name some entity has, sorted, from the attribute index."""
        return await self._read(lambda conn: distinct_keys(conn, "attr_values", tenant))

    async def type_summaries(
        self, tenant: str, types: Sequence[str] | None = None
    ) -> list[TypeSummary]:
        """A summary per entity type, from the counters kept on write (sqlite_stats)."""
        rows = await self._read(lambda conn: stats.read(conn, tenant, types=types))
        return types_from_stats(rows, types)

    async def attribute_summaries(
        self, tenant: str, names: Sequence[str] | None = None
    ) -> list[AttributeSummary]:
        """A summary per attribute name, from the counters kept on write (sqlite_stats)."""
        rows = await self._read(lambda conn: stats.read(conn, tenant, names=names))
        return attributes_from_stats(rows, names)

    # -- contexts (clause 5.13) -------------------------------------------------------
    async def put_context(self, record: ContextRecord) -> None:
        """Insert or replace a context record."""
        def run(conn: sqlite3.Connection) -> None:
            sql.put_context(conn, record)
            self._announce(conn, DEFAULT_TENANT, CONTEXT, record.url)

        await self._write(run)

    async def get_context(self, url: str) -> ContextRecord | None:
        """The context record for ``url``, or None."""
        return await self._read(lambda conn: sql.get_context(conn, url))

    async def list_contexts(self) -> list[ContextRecord]:
        """Every context record, sorted by URL."""
        return await self._read(sql.list_contexts)

    async def delete_context(self, url: str) -> bool:
        """Remove a context record; False if there was none."""
        def run(conn: sqlite3.Connection) -> bool:
            deleted = sql.delete_context(conn, url)
            if deleted:
                self._announce(conn, DEFAULT_TENANT, CONTEXT, url)
            return deleted

        return await self._write(run)

    # -- records -----------------------------------------------------------------------
    async def put_record(
        self, tenant: str, collection: str, record_id: str, document: dict[str, Any]
    ) -> None:
        """Insert or replace a record document."""
        encoded = orjson.dumps(document)

        def run(conn: sqlite3.Connection) -> None:
            sql.put_record(conn, tenant, collection, record_id, encoded)
            self._announce(conn, tenant, RECORD, record_id, collection)

        await self._write(run)

    async def get_record(
        self, tenant: str, collection: str, record_id: str
    ) -> dict[str, Any] | None:
        """The record document, or None."""
        raw = await self._read(lambda conn: sql.get_record(conn, tenant, collection, record_id))
        return None if raw is None else orjson.loads(raw)

    async def list_records(self, tenant: str, collection: str) -> list[dict[str, Any]]:
        """Every document of the collection in the tenant, sorted by record id."""
        rows = await self._read(lambda conn: sql.list_records(conn, tenant, collection))
        return [orjson.loads(raw) for raw in rows]

    async def delete_record(self, tenant: str, collection: str, record_id: str) -> bool:
        """Remove a record; False if there was none."""
        def run(conn: sqlite3.Connection) -> bool:
            deleted = sql.delete_record(conn, tenant, collection, record_id)
            if deleted:
                self._announce(conn, tenant, RECORD, record_id, collection)
            return deleted

        return await self._write(run)

    async def all_records(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        """(tenant, document) for every document of the collection, by tenant then id."""
        rows = await self._read(lambda conn: sql.all_records(conn, collection))
        return [(tenant, orjson.loads(raw)) for tenant, raw in rows]


__all__ = ["SqliteStore"]
