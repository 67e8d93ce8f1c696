"""The attribute names of each pack signature (schema 14, :mod:`.history_packs`).

A pack's ``sig`` (:mod:`.pack_signature`) has one bit of 63 per attribute name, so two
names may share a bit: in the benchmarks' data set ``PM10`` (25,000
AirQualityObserved Entities) and ``pm10`` (the Streetlights' readings) both have bit
9, and every AirQualityObserved pack was a candidate of a query of ``pm10``: its
Entity listed, its record read and dropped, on every request (most of what a
query by type and attrs over 100,000 Entities cost after schema 13).

``temporal_pack_names`` keeps, for each signature written, the names of the
instances of the packs stored with it: a row per signature, the names those
packs hold (their union, should two sets of names give one signature), or NULL
when not known (a signature of packs stored before schema 14: the table built at
open lists them so).  A pack whose signature meets the bits of the names read but
whose names are known and include none of them holds none of them
(:func:`excluded`); the rule that uses this is :class:`.history_packs.Holding`.
One table for the file, not a tenant's: a tenant's packs may only be told to hold
a name another's hold with that signature (settled early, never left out).

The writer writes a row only when a pack's names are not all in it already: it
remembers the rows of the file (:attr:`.history_memo.Memo.pack_names`, forgotten
with the rest of the memo on a rollback or another connection's commit), so a
pack of a signature seen costs a dict lookup and a set test, in the pack's own
transaction (a reader never sees a pack without its names).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import orjson

__all__ = ["SCHEMA", "Known", "create", "excluded", "note", "rows"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS temporal_pack_names (
    sig INTEGER PRIMARY KEY, names TEXT)
"""

#: the names of each signature a writer knows the file holds (None: any)
Known = dict[int, frozenset[str] | None]

#: signatures excluded at most in one read (a longer list only excludes fewer: the
#: packs of the others are settled, as any pack whose names are not known)
_EXCLUDED_MAX = 500


def create(conn: sqlite3.Connection) -> None:
    """Create the table if needed (after ``temporal_packs``); a file of schema 13 or
    before gets a row of unknown names (NULL) for each signature its packs have."""
    if conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table'"
                    " AND name = 'temporal_pack_names'").fetchone() is not None:
        return
    conn.execute(SCHEMA)
    conn.execute("INSERT INTO temporal_pack_names (sig, names) SELECT DISTINCT sig, NULL"
                 " FROM temporal_packs WHERE sig IS NOT NULL")


def note(conn: sqlite3.Connection, known: Known,
         packs: Iterable[tuple[int | None, Collection[str]]]) -> None:
    """In the write transaction of packs of signatures and names ``packs``: the rows of
    ``temporal_pack_names`` they need, written (``known``: the rows already written,
    the writer's memo, updated)."""
    for sig, names in packs:
        if sig is None:
            continue
        if sig in known:
            held = known[sig]
            if held is None or held.issuperset(names):
                continue  # any name, or these already (the usual pack)
        _write(conn, known, sig, names)


def _write(conn: sqlite3.Connection, known: Known, sig: int, names: Collection[str]) -> None:
    found = conn.execute("SELECT names FROM temporal_pack_names WHERE sig = ?",
                         (sig,)).fetchone()
    held: frozenset[str] | None
    if found is not None and found[0] is None:
        held = None  # packs of this signature whose names are not known: any
    else:
        stored = frozenset() if found is None else frozenset(orjson.loads(found[0]))
        held = stored | frozenset(names)
        if held != stored or found is None:
            conn.execute("INSERT OR REPLACE INTO temporal_pack_names (sig, names)"
                         " VALUES (?, ?)", (sig, orjson.dumps(sorted(held)).decode()))
    known[sig] = held


def excluded(conn: sqlite3.Connection, bits: int, names: Collection[str]) -> list[int]:
    """The signatures meeting ``bits`` (the signature of ``names``) whose packs are
    known to hold none of ``names`` (at most :data:`_EXCLUDED_MAX`)."""
    wanted = frozenset(names)
    out: list[int] = []
    for sig, held in conn.execute(
            "SELECT sig, names FROM temporal_pack_names WHERE sig & ? != 0"
            " AND names IS NOT NULL", (bits,)):
        if wanted.isdisjoint(orjson.loads(held)):
            out.append(sig)
            if len(out) >= _EXCLUDED_MAX:
                break
    return out


def rows(conn: sqlite3.Connection) -> Sequence[tuple[Any, ...]]:
    """Every row (tests)."""
    return conn.execute("SELECT sig, names FROM temporal_pack_names ORDER BY sig").fetchall()
