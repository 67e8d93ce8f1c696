"""Multi-row INSERTs (storage.sqlite.inserts): the rows end as one-row statements leave them,
and the rows a batch inserts come in the order they are sorted in (storage.sqlite.bulk)."""

from __future__ import annotations

import sqlite3
from itertools import chain
from operator import itemgetter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.prepared import PreparedCreation
from storage.sqlite.bulk import Rows
from storage.sqlite.inserts import ROWS, insert_rows

_TABLE = "CREATE TABLE t (k INTEGER PRIMARY KEY, a, b TEXT) "
_STATEMENTS = (
    "INSERT OR IGNORE INTO t (k, a, b) VALUES (?, ?, ?)",
    "INSERT INTO t (k, a, b) VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET"
    " a = excluded.a, b = excluded.b || t.b",
)
_value = st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=3), st.none(),
                   st.binary(max_size=2))
_row = st.tuples(st.integers(0, 40), _value, st.text(max_size=3))


def _table(statement: str, rows: list[tuple[object, ...]], many: bool) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(":memory:")
    conn.execute(_TABLE)
    conn.execute("INSERT INTO t VALUES (3, 'before', 'x')")
    if many:
        insert_rows(conn, statement, rows)
    else:
        conn.executemany(statement, rows)
    return conn.execute("SELECT k, a, b FROM t ORDER BY k").fetchall()


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_STATEMENTS), st.lists(_row, max_size=3 * ROWS + 5))
def test_same_rows_as_one_row_statements(statement: str, rows: list[tuple[object, ...]]) -> None:
    # duplicate keys in one statement, conflicts with a stored row, a tail of fewer rows
    assert _table(statement, rows, many=True) == _table(statement, rows, many=False)


def test_not_an_insert_of_values() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(_TABLE)
    with pytest.raises(ValueError, match="VALUES"):
        insert_rows(conn, "INSERT INTO t SELECT 1, 2, 3", [()] * ROWS)


_attr_names = st.sampled_from(["a", "b", "https://example.org/c", "d"])
_prepared_entity = st.builds(
    lambda n, values: PreparedCreation(
        f"urn:ngsi-ld:Thing:{n}", b"{}", None, None, None, ("Thing",),
        tuple(dict.fromkeys(a for a, _, _ in values)),
        tuple(chain.from_iterable(values)), (), ()),
    st.integers(0, 30),
    st.lists(st.tuples(_attr_names, st.integers(0, 3), st.integers(0, 1)), max_size=6))


@given(st.lists(_prepared_entity, max_size=12),
       st.permutations([1, 2, 3, 4]))
def test_prepared_value_rows_come_in_the_order_of_the_usual_sort(
        created: list[PreparedCreation], numbers: list[int]) -> None:
    """The value rows of a batch's prepared creations, put in order per name number,
    are the rows sorted by (number, id) as every other batch's are, ties as given."""
    rows = Rows("t")
    for one in created:
        rows.add_prepared(one)
    nids = dict(zip(["a", "b", "https://example.org/c", "d"], numbers, strict=True))
    expected = sorted(rows._prepared_rows(nids), key=itemgetter(0, 1))
    assert rows._prepared_rows(nids, in_order=True) == expected
