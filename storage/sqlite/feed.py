"""The change feed and the leases of the SQLite store, for several broker processes on one file.

Several broker processes may serve one SQLite file (``--workers N``, or
``--cluster true`` on each).  What one process changes, the others learn
from the ``feed`` table, an outbox written in the SAME transaction as the
change itself, so a change is in the feed if and only if it was committed:

    feed(seq, at, origin, tenant, kind, collection, key, before, after)

* ``kind`` is ``entity`` (``before``/``after`` are the stored documents, JSON),
  ``record`` (a subscription or another record was put or deleted:
  ``collection``/``key``) or ``context`` (a stored @context changed: ``key`` is
  its URL);
* ``seq`` is AUTOINCREMENT: it only grows, also across deletions, so a reader
  keeps a position and asks for what follows;
* every process writes with its own ``origin`` and skips its own items (it
  handled them when it wrote them);
* rows older than the retention are trimmed; a process that falls further
  behind logs the gap.

Leases give each subscription one owner among the processes:

    leases(name, owner, until, epoch)

A lease is held while ``until`` (wall-clock seconds) is in the future; taking
it over increments ``epoch``.  A write guarded by a lease (the delivery counters
of a subscription: :func:`put_fenced`) is ONE conditional statement,
``UPDATE records ... WHERE EXISTS (lease with this owner AND this epoch)``:
SQLite runs one writer at a time, so the write and the check cannot be separated
by a take-over; a holder that lost its lease writes nothing.  A released lease
is deleted, and one taken again starts at epoch 1: the owner is part of the
condition, so an old holder's epoch never matches a later holder's.

The mark of a change (``FeedItem.mark``, ``SharedStore.feed_mark``) is its
``seq``: SQLite commits one transaction at a time, so ``seq`` order is commit
order, and the head read at some instant is at or after every change committed
before it.  All of this runs on the store's threads, each function inside the
caller's transaction.
"""

from __future__ import annotations

import sqlite3
import time

import orjson

from ..sharing import FeedItem, Fence
from .sql import ReadTransaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    origin TEXT NOT NULL,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    collection TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL,
    before BLOB,
    after BLOB
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until REAL NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""

def create_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def append(
    conn: sqlite3.Connection,
    origin: str,
    tenant: str,
    kind: str,
    key: str,
    *,
    collection: str = "",
    before: bytes | None = None,
    after: bytes | None = None,
) -> None:
    """Add one item to the feed (inside the transaction of the change it describes)."""
    conn.execute(
        "INSERT INTO feed (at, origin, tenant, kind, collection, key, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (time.time(), origin, tenant, kind, collection, key, before, after),
    )


def head(conn: sqlite3.Connection) -> int:
    """The position after the last item (0 for an empty feed)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'feed'").fetchone()
    return int(row[0]) if row else 0


def read(
    conn: sqlite3.Connection, after: int, origin: str, limit: int
) -> tuple[list[FeedItem], int, int]:
    """Items of other origins after ``after``, the new position, and how many were trimmed.

    One read transaction: the position is the head of the same snapshot, so no
    item committed later can fall below it.
    """
    with ReadTransaction(conn):
        rows = conn.execute(
            "SELECT seq, origin, tenant, kind, collection, key, before, after FROM feed"
            " WHERE seq > ? AND origin <> ? ORDER BY seq LIMIT ?",
            (after, origin, limit),
        ).fetchall()
        position = rows[-1][0] if len(rows) == limit else max(head(conn), after)
        first = conn.execute("SELECT min(seq) FROM feed").fetchone()[0]
    missed = max(0, (first or position + 1) - after - 1)
    items = [
        FeedItem(
            seq, who, tenant, kind, collection, key,
            None if before is None else orjson.loads(before),
            None if doc is None else orjson.loads(doc),
            seq,
        )
        for seq, who, tenant, kind, collection, key, before, doc in rows
    ]
    return items, position, missed


def trim(conn: sqlite3.Connection, older_than: float) -> int:
    """Delete the items written before ``older_than`` (wall-clock seconds)."""
    return conn.execute("DELETE FROM feed WHERE at < ?", (older_than,)).rowcount


# -- leases ---------------------------------------------------------------------------
def acquire(conn: sqlite3.Connection, name: str, owner: str, ttl: float) -> bool:
    """Take the lease if it is free, expired or already ours; True if we hold it now."""
    now = time.time()
    conn.execute(
        "INSERT INTO leases (name, owner, until, epoch) VALUES (?, ?, ?, 1)"
        " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until,"
        " epoch = leases.epoch + (leases.owner <> excluded.owner)"
        " WHERE leases.owner = excluded.owner OR leases.until < ?",
        (name, owner, now + ttl, now),
    )
    row = conn.execute("SELECT owner FROM leases WHERE name = ?", (name,)).fetchone()
    return row is not None and row[0] == owner


def renew(conn: sqlite3.Connection, owner: str, ttl: float) -> list[str]:
    """Extend every unexpired lease of ``owner``; the names it still holds."""
    now = time.time()
    conn.execute(
        "UPDATE leases SET until = ? WHERE owner = ? AND until >= ?", (now + ttl, owner, now)
    )
    rows = conn.execute(
        "SELECT name FROM leases WHERE owner = ? AND until >= ?", (owner, now)
    ).fetchall()
    return [name for (name,) in rows]


def release(conn: sqlite3.Connection, owner: str, names: list[str] | None) -> None:
    """Give up some (or, with None, all) leases of ``owner``."""
    if names is None:
        conn.execute("DELETE FROM leases WHERE owner = ?", (owner,))
    else:
        conn.executemany(
            "DELETE FROM leases WHERE name = ? AND owner = ?", [(n, owner) for n in names]
        )


def drop(conn: sqlite3.Connection, name: str) -> None:
    """Remove a lease whoever holds it (its subject was deleted)."""
    conn.execute("DELETE FROM leases WHERE name = ?", (name,))


def epoch(conn: sqlite3.Connection, name: str, owner: str) -> int | None:
    """The epoch of the lease ``name`` if ``owner`` holds it (unexpired), else None."""
    row = conn.execute(
        "SELECT epoch FROM leases WHERE name = ? AND owner = ? AND until >= ?",
        (name, owner, time.time()),
    ).fetchone()
    return None if row is None else int(row[0])


def put_fenced(conn: sqlite3.Connection, tenant: str, collection: str, record_id: str,
               document: bytes, lease: Fence) -> bool:
    """Replace an existing record while ``lease`` is held with its epoch; True if done.

    Not ``until``: a holder whose lease expired but was not taken over is still the
    last to have held it, and its write is the newest.
    """
    return conn.execute(
        "UPDATE records SET document = ? WHERE tenant = ? AND collection = ? AND id = ?"
        " AND EXISTS (SELECT 1 FROM leases WHERE name = ? AND owner = ? AND epoch = ?)",
        (document, tenant, collection, record_id, lease.name, lease.owner, lease.epoch),
    ).rowcount == 1


def holders(conn: sqlite3.Connection, prefix: str) -> dict[str, str]:
    """Unexpired leases whose name starts with ``prefix``: name -> owner."""
    rows = conn.execute(
        "SELECT name, owner FROM leases WHERE name >= ? AND name < ? AND until >= ?",
        (prefix, prefix + "\U0010ffff", time.time()),
    ).fetchall()
    return dict(rows)


__all__ = [
    "acquire", "append", "create_tables", "drop", "epoch", "head", "holders", "put_fenced",
    "read", "release", "renew", "trim",
]
