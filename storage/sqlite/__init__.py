"""The embedded SQLite store (the broker's default): :class:`SqliteStore`.

- ``store`` — the Store itself: writes on one writer thread, reads on a pool;
- ``sql`` and ``index`` — the statements of an entity write and its index rows;
- ``query``, ``conditions``, ``execute`` — an EntityQuery compiled to SQL and run;
- ``threads`` — the writer thread that groups concurrent writes into transactions;
- ``wal`` — the WAL index header that ``data_version`` reads;
- ``checkpoint`` — the thread that checkpoints the WAL, out of the writer's COMMITs;
- ``feed`` — the change feed and leases of a store shared by processes.
"""

from .store import SqliteStore

__all__ = ["SqliteStore"]
