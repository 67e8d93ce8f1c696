"""A read-only view of the WAL index header (the first 48 bytes of ``<file>-shm``).

The header holds the commit counter, the last frame and the WAL salts, so it
changes with every commit, whichever process made it: the store's
``data_version`` reads it to tell whether a cached answer may still be served.
It is a memory read through a mapping, where a ``pread`` would release the GIL
and could wait for a reader thread to hand it back.

Why the descriptor is never closed while the store is open: SQLite's unix VFS
guards the WAL index with POSIX record locks, and POSIX drops *all* of a
process's locks on a file as soon as the process closes *any* descriptor of
that file.  Opening the ``-shm`` file, mapping it and closing the descriptor
(the usual idiom) silently released the lock that SQLite's own connections
hold.  The next process to open the database (a second ``--workers`` process,
a restarted worker, the ``sqlite3`` tool) then believed it was the first, and
truncated and rebuilt the index under the running broker: a process reading
the mapping in that moment died of SIGBUS, and its connections lost their
shared view of the WAL.  So the descriptor, and the mapping (which holds a
duplicate of it), are closed only by :meth:`WalIndexView.close`, which the
store calls after every one of its connections is closed.  For the same reason
the stores of one process that open the same file share one descriptor, closed
when the last of them closes.
"""

from __future__ import annotations

import mmap
import os
import threading
from dataclasses import dataclass
from pathlib import Path

#: bytes of the WAL index header (two copies of the 24-byte ``WalIndexHdr``)
HEADER_SIZE = 48


@dataclass(slots=True)
class _Open:
    """One open ``-shm`` descriptor of this process, its mapping once the file is long enough."""

    fd: int
    mapped: mmap.mmap | None = None
    users: int = 1

    def header(self) -> bytes | None:
        mapped = self.mapped
        if mapped is None:
            # under the lock: the event loop and the writer thread (sqlite_checkpoint)
            # both read headers, and a second mapping left to the garbage collector
            # would close its duplicate descriptor (see the module docstring)
            with _LOCK:
                if self.mapped is None:
                    try:
                        self.mapped = mmap.mmap(self.fd, HEADER_SIZE, access=mmap.ACCESS_READ)
                    except (OSError, ValueError):
                        return None  # too short yet: the descriptor stays open all the same
                mapped = self.mapped
        return mapped[:HEADER_SIZE]


#: absolute ``-shm`` path -> its descriptor, shared by the stores of this process
_OPEN: dict[str, _Open] = {}
_LOCK = threading.Lock()


def _acquire(path: str) -> _Open | None:
    with _LOCK:
        entry = _OPEN.get(path)
        if entry is not None:
            entry.users += 1
            return entry
        try:
            entry = _OPEN[path] = _Open(os.open(path, os.O_RDONLY))
        except OSError:
            return None
        return entry


def _release(path: str, entry: _Open) -> None:
    with _LOCK:
        entry.users -= 1
        if entry.users > 0:
            return
        del _OPEN[path]
        if entry.mapped is not None:
            entry.mapped.close()  # closes the mapping's duplicate of the descriptor
        os.close(entry.fd)


class WalIndexView:
    """The header of ``<database>-shm``; :meth:`close` once the store's connections are closed."""

    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}-shm")
        self._key = os.path.abspath(self.path)
        self._entry: _Open | None = None

    def header(self) -> bytes | None:
        """The 48 header bytes, or None while the file is missing or too short."""
        if self._entry is None:
            self._entry = _acquire(self._key)
            if self._entry is None:
                return None
        return self._entry.header()

    def close(self) -> None:
        """Let go of the descriptor (closed with its last user); safe to call twice."""
        if self._entry is not None:
            _release(self._key, self._entry)
            self._entry = None
