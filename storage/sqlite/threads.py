"""The threads of :class:`SqliteStore`: one writer with group commit, a few readers.

Each thread owns its connection and takes jobs from a queue.  It drains every
job queued at the moment it wakes up and handles them as a batch: the writer in
ONE transaction (group commit), each job inside its own SAVEPOINT so that a job
that fails is rolled back alone, except when the batch is one job or one group
(below), which runs without one and, if it fails, rolls the transaction back
whole (a SAVEPOINT makes SQLite copy every page the job changes to a statement
journal first, a temporary file past 64 KiB: about 250 µs for the ~50 pages of
ten small creates); the readers one after the other in ONE read
transaction (a BEGIN and a COMMIT a batch, not a query).  Consecutive
writer jobs that share a group key (the single entity writes of one tenant) run
as ONE call of their group function, which writes them as a batch (one
statement per table instead of a dozen per write); if that call fails other
than by SQLite, each job runs again alone.  Results go
back to the event loop through its :class:`Inbox`, and for the writer only after
the COMMIT: a batch's results are added to what the loop has not taken yet, and
the loop is woken (``call_soon_threadsafe``) only when nothing was waiting there,
so the batches of several threads that finish while the loop is busy cost it one
wake-up (uvloop's own wake-up is coalesced by libuv already; asyncio's loop
writes to its self-pipe at every call).  Measured: batching hand-offs this way
serves about four times more concurrent reads than a ``ThreadPoolExecutor``.
A write of a :class:`storage.chain.WriteChain` (:meth:`Worker.chained`) checks,
as it starts, that the write of the chain before it committed or ran in the
same transaction; the writer ends each one's link with its transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ngsi_ld.errors import ServiceUnavailable

from ..chain import ChainLink, WriteChain
from . import names, sql, stats

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Most jobs one batch takes, so that one commit never makes callers wait too long.
MAX_BATCH = 500

_STOP = object()

#: How long the writer waits for more jobs once the queue is empty and its batch is
#: smaller than the one before, when that one had :data:`LINGER_FROM` jobs or more
#: (many writes in flight): the event loop is likely still handing over the writes of
#: the requests it is parsing.  It waits again while each wait brought a job and the
#: batch is still smaller, at most :data:`LINGER_STEPS` times (2 ms).  A lone client's
#: write, or a few clients', never waits, nor a batch that has all the writes in
#: flight (those of every client waiting on it).  Measured (``benchmarks.writecpu``,
#: 16 connections): the writer's CPU per small create 200 -> 167 µs, per Streetlight
#: create 507 -> 470 µs (benchmarks/README.md).
LINGER_STEP = 0.00025
LINGER_STEPS = 8
#: the size of the last batch from which the writer lingers (with two or three writes
#: in flight a wait adds latency for a group of two or three at the most)
LINGER_FROM = 4

#: the function of a group of jobs (see Job)
Group = Callable[[sqlite3.Connection, list[Any]], list[tuple[bool, Any]]]


#: what a job gave: (the caller's future, True and the result, or False and the exception)
Settled = tuple[asyncio.Future[Any], bool, Any]


class Inbox:
    """The results the threads give back to one event loop, settled there in bulk.

    The threads :meth:`post` a batch's results; the loop is woken only by the post
    that finds the inbox empty, and then settles all that came until it runs."""

    __slots__ = ("_lock", "_settled", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._settled: list[Settled] = []

    def post(self, settled: list[Settled]) -> None:
        """Hand ``settled`` to the loop (from any thread)."""
        with self._lock:
            if self._settled:  # the loop is woken already and takes these too
                self._settled.extend(settled)
                return
            self._settled = settled
        try:
            self.loop.call_soon_threadsafe(self._settle)
        except RuntimeError:  # that loop is closed, nobody is waiting any more
            with self._lock:
                self._settled = []

    def _settle(self) -> None:
        with self._lock:
            settled, self._settled = self._settled, []
        for future, ok, value in settled:
            if future.done():  # the caller was cancelled; a write happened anyway
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


@dataclass(slots=True)
class Job:
    """Work for a thread: ``run`` gets the thread's connection."""

    run: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    inbox: Inbox
    #: jobs with the same key, queued together, may run as one call of ``group``
    key: Hashable | None = None
    #: what ``group`` gets of this job
    item: Any = None
    #: runs the items of several jobs: one (ok, result or exception) per item
    group: Group | None = None


def unavailable(exc: BaseException) -> ServiceUnavailable:
    """The error a caller sees when SQLite itself fails."""
    return ServiceUnavailable(f"the SQLite store failed: {exc}")


def _deliver(batch: list[Job], results: list[tuple[bool, Any]]) -> None:
    by_inbox: dict[Inbox, list[Settled]] = {}
    for job, (ok, value) in zip(batch, results, strict=True):
        by_inbox.setdefault(job.inbox, []).append((job.future, ok, value))
    for inbox, settled in by_inbox.items():
        inbox.post(settled)


def _end_read(conn: sqlite3.Connection) -> None:
    """End the read transaction left open on ``conn``, if any."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("SQLite rollback failed")


def _take_batch(jobs: queue.SimpleQueue[Any], expect: int = 0) -> tuple[list[Job], bool]:
    """Wait for a job, then drain what else is queued; True when told to stop.

    ``expect``: the size of the batch before, when the writer lingers
    (:data:`LINGER_STEP`): while the batch is smaller and jobs keep coming, wait for
    more."""
    first = jobs.get()
    if first is _STOP:
        return [], True
    batch = [first]
    steps = LINGER_STEPS
    before = 0  # the batch's size at the last wait
    while len(batch) < MAX_BATCH:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            if len(batch) >= expect or len(batch) == before or not steps:
                break  # as many as before, nothing came while it waited, or long enough
            steps -= 1
            before = len(batch)
            time.sleep(LINGER_STEP)
            continue
        if job is _STOP:
            return batch, True
        batch.append(job)
    return batch, False


class _Refused(Exception):
    """The lone unit of a transaction run without a SAVEPOINT failed other than by SQLite.

    A SAVEPOINT makes SQLite copy each page a job changes into a statement journal
    first (a temporary file once it passes 64 KiB), so that the job alone can be
    rolled back: for a transaction of one job, or of one group of jobs (the usual
    one under load), the whole transaction is rolled back instead."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _units(batch: list[Job]) -> list[list[Job]]:
    """``batch`` cut into what runs as one: consecutive jobs of one group key, each
    other job alone."""
    units: list[list[Job]] = []
    for job in batch:
        if units and job.key is not None and units[-1][0].key == job.key:
            units[-1].append(job)
        else:
            units.append([job])
    return units


class Worker:
    """One or more threads sharing a job queue, each with its own connection."""

    def __init__(self, path: Path, *, writer: bool, threads: int = 1) -> None:
        self.path = path
        self.writer = writer
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._count = 1 if writer else max(1, threads)
        #: Batches the threads handled; for the writer, transactions committed.
        self.batch_count = 0
        #: Jobs those batches carried.
        self.job_count = 0
        #: called on the writer thread after each rollback (of a transaction or a job)
        self.rollback_listeners: list[Callable[[], None]] = []
        #: called on the writer thread after each COMMIT, with its connection
        #: (sqlite_checkpoint)
        self.commit_listeners: list[Callable[[sqlite3.Connection], None]] = []
        #: the writer connection's ``wal_autocheckpoint`` (None: SQLite's default)
        self.autocheckpoint: int | None = None
        #: the writer connection's page cache in KiB (None: SQLite's default, 2 MB)
        self.cache_kib: int | None = None
        #: where the results go back to the event loop of the last job submitted
        self._inbox: Inbox | None = None
        #: the chain links of the jobs done in the open transaction (:meth:`chained`)
        self._ran: list[ChainLink] = []

    async def start(self) -> None:
        """Start the threads; the first one's connection is open (and the schema made)."""
        for n in range(self._count):
            ready: concurrent.futures.Future[None] = concurrent.futures.Future()
            role = "writer" if self.writer else f"reader{n}"
            thread = threading.Thread(
                target=self._main,
                args=(ready,),
                name=f"sqlite-{role}:{self.path.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
            await asyncio.wrap_future(ready)

    async def stop(self) -> None:
        """Let the threads finish the queued jobs, then stop them and close their connections."""
        for _ in self._threads:
            self._jobs.put(_STOP)
        for thread in self._threads:
            await asyncio.to_thread(thread.join)
        self._threads.clear()
        self._jobs = queue.SimpleQueue()  # no stop left over for a later start

    def submit(self, run: Callable[[sqlite3.Connection], T], *,
               group: Group | None = None, key: Hashable | None = None,
               item: Any = None) -> asyncio.Future[T]:
        """Run ``run(connection)`` on a thread of this worker; the future of its result
        (a plain future, not a coroutine: one frame less to start and resume per job).

        With ``group`` and ``key`` (writer only): when other jobs of the same key are
        queued right after or before this one, ``group(connection, items)`` runs them
        all at once instead, and must give each job the result ``run`` would have.
        """
        loop = asyncio.get_running_loop()
        inbox = self._inbox
        if inbox is None or inbox.loop is not loop:
            inbox = self._inbox = Inbox(loop)
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(Job(run, future, inbox, key if group is not None else None, item, group))
        return future

    def chained(self, run: Callable[[sqlite3.Connection], T],
                chain: WriteChain) -> Callable[[sqlite3.Connection], T]:
        """``run`` as the next write of ``chain`` (:mod:`storage.chain`), to submit at
        once: when it would start on the writer, it raises ``BrokenChain`` (nothing
        written) unless the write of the chain before it committed or ran in the same
        transaction."""
        assert self.writer, "a chain orders writes"
        link = chain.link()

        def run_chained(conn: sqlite3.Connection) -> T:
            link.start()
            value = run(conn)
            link.ran()
            self._ran.append(link)  # ended with its transaction (_transaction)
            return value

        return run_chained

    def _main(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            if self.writer:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sql.connect(self.path, readonly=not self.writer)
            if self.writer:
                if self.autocheckpoint is not None:
                    conn.execute(f"PRAGMA wal_autocheckpoint = {int(self.autocheckpoint)}")
                if self.cache_kib is not None:
                    conn.execute(f"PRAGMA cache_size = -{int(self.cache_kib)}")
                conn.execute("BEGIN IMMEDIATE")
                sql.create_schema(conn)
                conn.execute("COMMIT")
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            stopping = False
            expect = 0
            while not stopping:
                batch, stopping = _take_batch(self._jobs, expect)
                expect = len(batch) if self.writer and len(batch) >= LINGER_FROM else 0
                if batch:
                    results = self._write(conn, batch) if self.writer else self._read(conn, batch)
                    _deliver(batch, results)
                    # The event loop holds what the jobs gave from here on: the entities a
                    # batch wrote (its Changes) are freed there once answered, not by this
                    # thread before its next batch (a replaced Streetlight's two decoded
                    # states cost the writer ~15 µs to free, benchmarks/README.md).
                    del batch, results
        finally:
            conn.close()

    def _read(self, conn: sqlite3.Connection, batch: list[Job]) -> list[tuple[bool, Any]]:
        # A batch of several jobs reads in ONE transaction (the jobs' own are skipped,
        # sql.ReadTransaction): a BEGIN and a COMMIT per batch, not per query.  Its
        # snapshot begins after every job of the batch was queued, so each job still
        # sees all that was committed before it was submitted.
        shared = len(batch) > 1
        results: list[tuple[bool, Any]] = []
        try:
            if shared:
                sql.begin_read(conn)
            for job in batch:
                try:
                    results.append((True, job.run(conn)))
                except sqlite3.Error as exc:
                    log.error("SQLite read failed", exc_info=exc)
                    results.append((False, unavailable(exc)))
                    if shared:  # the rest in their own transactions, the failed one ended
                        shared = False
                        _end_read(conn)
                except Exception as exc:
                    results.append((False, exc))
            if shared:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:  # BEGIN or COMMIT failed: the batch's reads are in doubt
            log.error("SQLite read transaction failed", exc_info=exc)
            _end_read(conn)
            results = [(False, unavailable(exc)) for _ in batch]
        self.batch_count += 1
        self.job_count += len(batch)
        return results

    def _write(self, conn: sqlite3.Connection, batch: list[Job]) -> list[tuple[bool, Any]]:
        units = _units(batch)
        results = self._transaction(conn, units, bare=len(units) == 1)
        if results is None:  # the lone group failed other than by SQLite: each job alone
            results = self._transaction(conn, [[job] for job in batch], bare=False)
            assert results is not None
        self.job_count += len(batch)
        return results

    def _transaction(self, conn: sqlite3.Connection, units: list[list[Job]], *, bare: bool
                     ) -> list[tuple[bool, Any]] | None:
        """Run ``units`` in one write transaction, each in its SAVEPOINT unless ``bare``
        (a lone unit, see :class:`_Refused`); None when the bare unit was a group that
        failed (rolled back: the caller runs its jobs again, each alone)."""
        results: list[tuple[bool, Any]] = []
        committed = False  # and its results given as such
        try:
            conn.execute("BEGIN IMMEDIATE")
            sql.begin_versions(conn)
            stats.begin(conn)
            names.begin(conn)
            for unit in units:
                if len(unit) > 1:
                    results.extend(self._run_group(conn, unit, bare))
                else:
                    results.append(self._run_job(conn, unit[0].run, bare))
            stats.flush(conn)  # the discovery counters of every job, summed
            conn.execute("COMMIT")
            names.committed(conn)
            for listener in self.commit_listeners:
                listener(conn)
            committed = True
        except _Refused as refused:  # the one unit of a bare transaction failed
            self._roll_back(conn)
            return None if len(units[0]) > 1 else [(False, refused.error)]
        except Exception as exc:
            log.error("SQLite write transaction failed", exc_info=exc)
            self._roll_back(conn)
            return [(False, unavailable(exc)) for unit in units for _ in unit]
        finally:
            sql.end_versions(conn, committed)
            stats.end(conn)
            names.end(conn)
            if self._ran:
                for link in self._ran:
                    link.ended(committed)
                self._ran.clear()
        self.batch_count += 1
        return results

    def _roll_back(self, conn: sqlite3.Connection) -> None:
        """End the open write transaction, nothing of it kept."""
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("SQLite rollback failed")
        self._rolled_back()

    def _rolled_back(self) -> None:
        for listener in self.rollback_listeners:
            listener()

    def _run_job(self, conn: sqlite3.Connection, run: Callable[[sqlite3.Connection], Any],
                 bare: bool = False) -> tuple[bool, Any]:
        if bare:
            try:
                value = run(conn)
            except sqlite3.Error:
                raise
            except Exception as exc:
                raise _Refused(exc) from exc
            stats.end_job(conn, kept=True)
            return (True, value)
        conn.execute("SAVEPOINT job")
        try:
            value = run(conn)
        except sqlite3.Error:
            raise  # the transaction itself is in doubt: fail the whole batch
        except Exception as exc:
            conn.execute("ROLLBACK TO job")
            names.rolled_back(conn)  # the job's new names are gone
            self._rolled_back()
            stats.end_job(conn, kept=False)
            outcome: tuple[bool, Any] = (False, exc)
        else:
            stats.end_job(conn, kept=True)
            outcome = (True, value)
        conn.execute("RELEASE job")
        return outcome

    def _run_group(self, conn: sqlite3.Connection, jobs: list[Job], bare: bool
                   ) -> list[tuple[bool, Any]]:
        group = jobs[0].group
        assert group is not None
        grouped = self._run_job(conn, lambda c: group(c, [job.item for job in jobs]), bare)
        if grouped[0]:
            done: list[tuple[bool, Any]] = grouped[1]
            return done
        # the group function itself failed (not a job's own error): each job alone
        return [self._run_job(conn, job.run) for job in jobs]
