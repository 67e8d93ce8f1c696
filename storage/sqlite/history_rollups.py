"""Hourly rollups of the temporal history (docs/temporal.md 3.3): per series, kind and
hour, the count, the count of numbers, their sum, min, max and sum of squares, and
the count of transient instances, of the observed instances that are not deletions.

A recorded write adds to its hour's row (``ON CONFLICT DO UPDATE``); anything that
changes or removes instances (a temporal upsert replacing one, a corrected or
deleted instance, retention) recomputes the rows of the hours it touched from the
instances (min and max cannot be taken back).  An aggregation whose periods are
whole hours from a whole hour then reads 24 rows a series for a day instead of
8,640 instances (:mod:`.history_aggregate`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

__all__ = ["HOUR", "SCHEMA", "add", "drop_before", "drop_series", "recompute"]

#: the grain, in µs
HOUR = 3_600_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS temporal_rollups (
    sid INTEGER NOT NULL, h INTEGER NOT NULL, kind INTEGER NOT NULL,
    n INTEGER NOT NULL, nn INTEGER NOT NULL, s REAL, mn REAL, mx REAL, sq REAL,
    tr INTEGER NOT NULL,
    PRIMARY KEY (sid, h, kind)) WITHOUT ROWID
"""

# (flags >> 1) & 15 is the kind; bit 0 says t is the observedAt (history_sql)
_TRANSIENT = "(ext IS NOT NULL AND instr(ext, 'expiresAt') > 0)"

_ADD = """
INSERT INTO temporal_rollups (sid, h, kind, n, nn, s, mn, mx, sq, tr)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sid, h, kind) DO UPDATE SET
    n = n + excluded.n, nn = nn + excluded.nn,
    s = CASE WHEN s IS NULL THEN excluded.s WHEN excluded.s IS NULL THEN s
             ELSE s + excluded.s END,
    mn = min(coalesce(mn, excluded.mn), coalesce(excluded.mn, mn)),
    mx = max(coalesce(mx, excluded.mx), coalesce(excluded.mx, mx)),
    sq = CASE WHEN sq IS NULL THEN excluded.sq WHEN excluded.sq IS NULL THEN sq
              ELSE sq + excluded.sq END,
    tr = tr + excluded.tr
"""


def add(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Add new instance rows ``(sid, t, iid, flags, cre, mod, del, num, val, ext)``."""
    groups: dict[tuple[int, int, int], list[Any]] = {}
    for sid, t, _, flags, _, _, deleted, num, _, ext in rows:
        if not flags & 1 or deleted is not None:
            continue
        key = (sid, t // HOUR, (flags >> 1) & 15)
        g = groups.get(key)
        if g is None:
            g = groups[key] = [0, 0, None, None, None, None, 0]
        g[0] += 1
        if num is not None:
            g[1] += 1
            g[2] = num if g[2] is None else g[2] + num
            g[3] = num if g[3] is None else min(g[3], num)
            g[4] = num if g[4] is None else max(g[4], num)
            g[5] = num * num if g[5] is None else g[5] + num * num
        if ext is not None and ext.find(b"expiresAt") >= 0:  # as bulk.expiry_of searches
            g[6] += 1
    if groups:
        conn.executemany(_ADD, [(*key, *g) for key, g in groups.items()])


def recompute(conn: sqlite3.Connection, touched: Iterable[tuple[int, int]]) -> None:
    """Rebuild the rows of the (sid, hour) pairs ``touched`` from the instances."""
    for sid, h in set(touched):
        conn.execute("DELETE FROM temporal_rollups WHERE sid = ? AND h = ?", (sid, h))
        conn.execute(
            "INSERT INTO temporal_rollups (sid, h, kind, n, nn, s, mn, mx, sq, tr)"
            " SELECT sid, ?, (flags >> 1) & 15, count(*), count(num), sum(num), min(num),"
            f" max(num), sum(num * num), sum({_TRANSIENT}) FROM temporal_instances"
            " WHERE sid = ? AND t >= ? AND t < ? AND flags & 1 AND del IS NULL"
            " GROUP BY (flags >> 1) & 15", (h, sid, h * HOUR, (h + 1) * HOUR))


def drop_series(conn: sqlite3.Connection, sid: int) -> None:
    """Forget the rows of a series whose instances are gone."""
    conn.execute("DELETE FROM temporal_rollups WHERE sid = ?", (sid,))


def drop_before(conn: sqlite3.Connection, cutoff: int) -> None:
    """After retention removed the instances before ``cutoff``: the hours before it go,
    the hour it falls in is rebuilt."""
    h = cutoff // HOUR
    conn.execute("DELETE FROM temporal_rollups WHERE h < ?", (h,))
    sids = [row[0] for row in conn.execute(
        "SELECT DISTINCT sid FROM temporal_rollups WHERE h = ?", (h,))]
    recompute(conn, [(sid, h) for sid in sids])
