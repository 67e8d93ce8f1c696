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
store calls after every one of its connections is closed.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

#: bytes of the WAL index header (two copies of the 24-byte ``WalIndexHdr``)
HEADER_SIZE = 48


class WalIndexView:
    """Maps ``<database>-shm`` on first use; :meth:`close` only once no connection is open."""

    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}-shm")
        self._fd: int | None = None
        self._map: mmap.mmap | None = None

    def header(self) -> bytes | None:
        """The 48 header bytes, or None while the file is missing or too short."""
        if self._map is None:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDONLY)
                self._map = mmap.mmap(self._fd, HEADER_SIZE, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                return None  # the descriptor stays open (see the module docstring)
        return self._map[:HEADER_SIZE]

    def close(self) -> None:
        """Unmap and close the descriptor; call it after closing the database's connections."""
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
