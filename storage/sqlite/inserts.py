"""Many rows of one INSERT in few statements: a VALUES list of :data:`ROWS` rows each.

``executemany`` of a one-row INSERT binds and steps the statement once a row; its
per-row work outside SQLite's B-tree (the binding of each parameter from a Python
tuple, the step and the reset) is close to a microsecond.  A statement of
:data:`ROWS` rows pays it once for all of them: measured on the ``attr_values``
rows of CSV entities (7 rows each, 30 batches of 1,000 entities), 26-27 → 20-22 µs
an entity (benchmarks/README.md, "The writer's rows in multi-row INSERTs").

The rows go in the order given, each as the one-row statement would insert it
(``OR IGNORE`` and ``ON CONFLICT`` clauses apply row by row, a later row after an
earlier one), so a caller's rows end the same in the file.  The rows beyond the
last full statement go through the one-row statement: the few rows of a single
write run exactly as before, and every statement text is one of two (the
connection's statement cache keeps both).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

__all__ = ["ROWS", "insert_rows"]

#: rows per multi-row statement (at most 64 x 7 = 448 parameters: below the 999 of
#: SQLite's oldest limit); 50 to 500 measured the same
ROWS = 64
#: the multi-row text of each one-row INSERT met
_multi: dict[str, str] = {}


def _multi_row(statement: str) -> str:
    """``statement`` (one ``VALUES (?, ...)`` group) with :data:`ROWS` groups."""
    head, values, rest = statement.partition(" VALUES ")
    if not values or not rest.startswith("("):
        raise ValueError(f"not a one-row INSERT ... VALUES (...): {statement!r}")
    group, close, tail = rest.partition(")")
    return head + values + ", ".join([group + close] * ROWS) + tail


def insert_rows(conn: sqlite3.Connection, statement: str,
                rows: Sequence[Sequence[Any]]) -> None:
    """Run the one-row INSERT ``statement`` for each of ``rows``, in order (see the
    module): :data:`ROWS` rows a statement, the rest one by one."""
    full = len(rows) - len(rows) % ROWS
    if full:
        multi = _multi.get(statement)
        if multi is None:
            multi = _multi[statement] = _multi_row(statement)
        conn.executemany(multi, [tuple(chain.from_iterable(rows[i:i + ROWS]))
                                 for i in range(0, full, ROWS)])
    if full < len(rows):
        conn.executemany(statement, rows[full:])
