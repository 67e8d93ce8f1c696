"""WAL checkpoints on a thread of their own, not in the writer's COMMITs (issue 19).

SQLite's default (``wal_autocheckpoint`` = 1,000 pages) makes the connection
whose COMMIT takes the WAL past 1,000 frames copy the WAL back into the
database file, inside that COMMIT: on the store's writer thread, the one thread
every write waits for.  Measured on single Streetlight creates (16 connections,
``time.thread_time()`` around each COMMIT of an instrumented writer): a COMMIT
that checkpointed cost 3.2-3.8 ms against 0.9-1.2 ms for the others, about 50
µs per create on the writer thread.

So the store's writer leaves checkpoints to a :class:`Checkpointer`: a thread
with its own connection, woken after a COMMIT that took the WAL past
:data:`PAGES` frames since the last wake-up, which runs PASSIVE checkpoints
(they copy what no reader still needs and wait for no lock, so the writer goes
on writing meanwhile); the writer itself copies only the frames it committed
during the last of them, so that it can start the WAL over
(:meth:`Checkpointer.committed`).  Should the checkpointer lag (a reader holding
an old snapshot for long), the writer's own automatic checkpoint, set to
:data:`WRITER_PAGES`, is the bound the WAL cannot outgrow.

The frame count comes from the WAL index header (``mxFrame``, a memory read of
:class:`~storage.sqlite.wal.WalIndexView`), so the writer pays no statement for it.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from . import sql

log = logging.getLogger(__name__)

#: WAL frames (pages) written since the last checkpoint at which the checkpointer runs
PAGES = 2000
#: the writer connection's own ``wal_autocheckpoint``: the bound if the checkpointer lags
WRITER_PAGES = 4 * PAGES
#: checkpoints the thread runs in a row, at most, to copy the whole WAL
_PASSES = 4

#: ``mxFrame``, a native 32-bit unsigned integer at byte 16 of the WAL index header
_MX_FRAME = struct.Struct("=I")
_MX_FRAME_AT = 16


def frames(header: bytes | None) -> int | None:
    """The frames of the WAL (``mxFrame``) from its index header, None if unknown."""
    if header is None or len(header) < _MX_FRAME_AT + 4:
        return None
    (count,) = _MX_FRAME.unpack_from(header, _MX_FRAME_AT)
    return int(count)


class Checkpointer:
    """A thread that checkpoints the WAL of one database file (see the module)."""

    def __init__(self, path: Path, header: Callable[[], bytes | None]) -> None:
        self.path = path
        self._header = header
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: frames of the WAL when the checkpointer was last woken, or after a restart
        self._mark = 0
        self._seen = 0
        #: checkpoints run so far (the tests read it)
        self.count = 0
        #: the thread's last checkpoint copied the whole WAL (the writer finishes it)
        self._copied = False

    def start(self) -> None:
        """Start the thread (its connection is opened on it)."""
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._main, daemon=True,
                                        name=f"sqlite-checkpoint:{self.path.name}")
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close its connection (blocks until then)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        thread.join()

    def committed(self, conn: sqlite3.Connection) -> None:
        """Called by the writer thread after each COMMIT (``conn`` its connection, out of
        any transaction): wake the thread when the WAL grew by :data:`PAGES` frames
        since it was last woken; after a checkpoint of the thread that copied the
        whole WAL, copy what the writer added since, so that it starts the WAL over.

        The writer starts the WAL over only in a transaction that began while every
        frame was copied.  Under load the writer is always in a transaction: the
        thread's checkpoints, however complete, end while the next transaction is
        open, which commits more frames.  The WAL then grew to :data:`WRITER_PAGES`
        before the writer checkpointed it itself, and appending to a longer file
        cost the writer more than the checkpoints it no longer ran (small creates:
        405 against 150 µs a request in the first round).  The rest to copy is the
        frames of a transaction or two."""
        if self._copied:
            self._copied = False
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:  # the transaction committed: its writes stand
                log.exception("SQLite checkpoint failed")
        count = frames(self._header())
        if count is None:
            return
        if count < self._seen:  # the WAL started over: count from its start
            self._mark = 0
        self._seen = count
        if count - self._mark >= PAGES:
            self._mark = count
            self._wake.set()

    def _catch_up(self, conn: sqlite3.Connection) -> None:
        # A pass copies the frames there were when it began; another pass copies the
        # few the writer added meanwhile, until one finds nothing more to copy.
        for _ in range(_PASSES):
            (busy, logged, copied) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.count += 1
            if busy:
                return
            if logged == copied:
                self._copied = True
                return

    def _main(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = sql.connect(self.path, readonly=False)
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    self._catch_up(conn)
                except sqlite3.Error:
                    # the writer's own checkpoint still bounds the WAL
                    log.exception("SQLite checkpoint failed")
        except sqlite3.Error:
            log.exception("the SQLite checkpoint thread could not open %s", self.path)
        finally:
            if conn is not None:
                conn.close()


__all__ = ["PAGES", "WRITER_PAGES", "Checkpointer", "frames"]
