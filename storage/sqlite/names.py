"""The dictionary of the SQLite store's index keys: (tenant, name) -> a small integer.

The query indexes (``sqlite_index``) hold one row per entity and type, attribute
or attribute value; their keys were the tenant and the expanded name (an IRI of
50 characters or so), repeated in every row and in the value index.  Keyed by
the integer of ``names`` instead, a row is a third of the size and a batch of
Streetlights writes its value rows in 40% less CPU time (benchmarks/README.md).
The integer also carries the tenant: the index tables have no tenant column.

Entity ids stay text in the index rows: query results are paged in id order and
an index range read in id order is what lets SQLite stop after the page (an
integer key per entity would order the ranges by key, and every match would
have to be sorted by id before the first page).

A name keeps its number for the life of the file: rows of ``names`` are never
deleted nor updated, and ``nid`` is an INTEGER PRIMARY KEY, which VACUUM keeps.
So a number learnt from the file is valid for every connection and process that
shares it.  Readers resolve names inside their statements (:func:`nid_sql`, an
uncorrelated scalar subquery SQLite evaluates once per statement), so a name
written by another process is found as soon as its commit is visible; a name
not yet in the dictionary selects nothing.  The writer resolves the names of a
write in Python (:func:`ids`), adding the missing ones, and keeps the numbers
of committed names on its connection (:class:`NameCache`): a number added by a
transaction or a job that is rolled back is forgotten with it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS names (
    nid INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (tenant, name)
)
"""

#: the number of a name of the tenant given as parameters (tenant, name), in SQL
NID = "(SELECT nid FROM names WHERE tenant = ? AND name = ?)"

_SELECT = (
    "SELECT name, nid FROM names WHERE tenant = ? AND name IN (SELECT value FROM json_each(?))"
)
_INSERT = "INSERT OR IGNORE INTO names (tenant, name) SELECT ?, value FROM json_each(?)"


class NameCache:
    """The numbers a writing connection learnt (see the module docstring)."""

    __slots__ = ("committed", "pending")

    def __init__(self) -> None:
        #: numbers of names the file holds for good (from committed transactions)
        self.committed: dict[tuple[str, str], int] = {}
        #: numbers learnt in the open write transaction; None: no transaction began
        #: with :func:`begin`, so nothing learnt is kept
        self.pending: dict[tuple[str, str], int] | None = None


def cache_of(conn: sqlite3.Connection) -> NameCache | None:
    """The cache of ``conn`` (a store connection), None for any other connection."""
    return getattr(conn, "names", None)


def begin(conn: sqlite3.Connection) -> None:
    """A write transaction began on ``conn``: what it learns is kept until its end."""
    cache = cache_of(conn)
    if cache is not None:
        cache.pending = {}


def rolled_back(conn: sqlite3.Connection) -> None:
    """The transaction, or a job of it, was rolled back: its numbers may be gone."""
    cache = cache_of(conn)
    if cache is not None and cache.pending is not None:
        cache.pending.clear()


def committed(conn: sqlite3.Connection) -> None:
    """The transaction committed: what it learnt is in the file for good."""
    cache = cache_of(conn)
    if cache is not None and cache.pending is not None:
        cache.committed.update(cache.pending)
        cache.pending = None


def end(conn: sqlite3.Connection) -> None:
    """The write transaction is over (committed or rolled back)."""
    cache = cache_of(conn)
    if cache is not None:
        cache.pending = None


def ids(conn: sqlite3.Connection, tenant: str, wanted: Iterable[str]) -> dict[str, int]:
    """The number of every name of ``wanted`` in ``tenant``, the missing ones added
    (inside the caller's write transaction)."""
    cache = cache_of(conn)
    found: dict[str, int] = {}
    missing: list[str] = []
    for name in wanted:
        key = (tenant, name)
        nid = None
        if cache is not None:
            nid = cache.committed.get(key)
            if nid is None and cache.pending is not None:
                nid = cache.pending.get(key)
        if nid is None:
            missing.append(name)
        else:
            found[name] = nid
    if not missing:
        return found
    listed = orjson.dumps(missing).decode()
    learnt: dict[str, int] = dict(conn.execute(_SELECT, (tenant, listed)).fetchall())
    if len(learnt) < len(missing):
        conn.execute(_INSERT, (tenant, listed))
        learnt = dict(conn.execute(_SELECT, (tenant, listed)).fetchall())
    found.update(learnt)
    if cache is not None and cache.pending is not None:
        # maybe added by this transaction: kept only once it commits
        cache.pending.update(((tenant, name), nid) for name, nid in learnt.items())
    return found


def create(conn: sqlite3.Connection) -> None:
    """Create the dictionary table."""
    conn.execute(SCHEMA)


__all__ = [
    "NID", "NameCache", "begin", "cache_of", "committed", "create", "end", "ids",
    "rolled_back",
]
