"""The writer's cheaper steps give what the usual ones give (issue 19).

- ``sql.bind_plainly``: a connection of ``sql.connect`` binds ``None`` and ``bytes``
  through adapters that give them back as they are, instead of the sqlite3 module's
  adapter look-up; the rows stored and read back are those of a connection without
  them, for parameters of every kind (the subclasses and buffers still looked up).
- ``bulk.expiry_of``, ``prepared.prepare_creation``: an entity's expiry told by a
  byte search (``find``) of its document, as the ``in`` test it replaced tells it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.expiry import earliest_expiry
from storage.sqlite import sql
from storage.sqlite.bulk import expiry_of
from storage.sqlite.prepared import prepare_creation

PLAIN = ((bytes, sqlite3.PrepareProtocol), (type(None), sqlite3.PrepareProtocol))


class Blob(bytes):
    """A bytes subclass: the module looks its adapter up as before."""


@contextmanager
def without_plain_adapters() -> Iterator[None]:
    """The sqlite3 module as it is without ``bind_plainly``, for the block."""
    kept = {key: sqlite3.adapters.pop(key) for key in PLAIN if key in sqlite3.adapters}
    try:
        yield
    finally:
        sqlite3.adapters.update(kept)


VALUES = st.one_of(
    st.none(), st.binary(max_size=40), st.integers(-2**63, 2**63 - 1),
    st.floats(allow_nan=False), st.text(max_size=20),
    st.binary(max_size=20).map(bytearray), st.binary(max_size=20).map(Blob),
    st.binary(max_size=20).map(memoryview),
)
ROWS = st.lists(st.tuples(VALUES, VALUES, VALUES), min_size=1, max_size=8)


def _stored(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    conn.execute("DELETE FROM t")
    conn.executemany("INSERT INTO t (a, b, c) VALUES (?, ?, ?)", rows)
    for row in rows:  # one statement a row too, and the values looked for as bound
        conn.execute("INSERT INTO t (a, b, c) VALUES (?, ?, ?)", row)
        conn.execute("SELECT count(*) FROM t WHERE a IS ? AND b IS ? AND c IS ?",
                     row).fetchone()
    found = [conn.execute("SELECT count(*) FROM t WHERE a IS ? AND b IS ? AND c IS ?",
                          row).fetchone()[0] for row in rows]
    return [*conn.execute("SELECT a, typeof(a), b, typeof(b), c, typeof(c) FROM t"
                          " ORDER BY rowid"), tuple(found)]


@settings(max_examples=60, deadline=None)
@given(rows=ROWS)
def test_values_bound_plainly_are_stored_and_found_as_the_module_binds_them(
        tmp_path_factory: Any, rows: list[tuple[Any, ...]]) -> None:
    path: Path = tmp_path_factory.mktemp("bind") / "b.db"
    conn = sql.connect(path, readonly=False)  # registers the plain adapters
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS t (a, b, c)")
        assert all(key in sqlite3.adapters for key in PLAIN)
        plain = _stored(conn, rows)
        with without_plain_adapters():
            usual = _stored(conn, rows)
        assert plain == usual
    finally:
        conn.close()


def test_the_plain_adapters_give_each_value_back_itself() -> None:
    sql.bind_plainly()
    sql.bind_plainly()  # each connection registers them again: the same two
    doc = b'{"id":"urn:ngsi-ld:Lamp:1"}'
    assert sqlite3.adapters[PLAIN[0]](doc) is doc
    assert sqlite3.adapters[PLAIN[1]](None) is None
    assert (Blob, sqlite3.PrepareProtocol) not in sqlite3.adapters


EXPIRES = st.sampled_from(["2030-01-01T00:00:00Z", "2029-06-01T12:00:00.250Z"])
INSTANCE = st.fixed_dictionaries(
    {"type": st.just("Property"),
     "value": st.one_of(st.integers(-2**63, 2**63 - 1), st.text(max_size=12))},
    optional={"expiresAt": EXPIRES,
              "note": st.fixed_dictionaries({"type": st.just("Property"),
                                             "value": st.text(max_size=12)},
                                            optional={"expiresAt": EXPIRES})})
ENTITY = st.fixed_dictionaries(
    {"id": st.just("urn:ngsi-ld:Lamp:1"), "type": st.just(["https://example.org/Lamp"]),
     "attrs": st.dictionaries(st.sampled_from(["https://example.org/a", "expiresAt",
                                               "https://example.org/expiresAt"]),
                              st.lists(INSTANCE, min_size=1, max_size=2), max_size=3)},
    optional={"expiresAt": EXPIRES,
              "createdAt": st.just("2026-01-01T00:00:00.000Z"),
              "modifiedAt": st.just("2026-01-01T00:00:00.000Z")})


@settings(max_examples=150)
@given(entity=ENTITY, text=st.sampled_from(["", '"expiresAt"', "expiresAt", '"expiresA"']))
def test_an_expiry_is_told_by_the_search_of_the_document_as_by_in(
        entity: dict[str, Any], text: str) -> None:
    # the document as stored, or with the marker elsewhere (a value that spells it)
    for doc in (orjson.dumps(entity), orjson.dumps({**entity, "x": text})):
        expected = earliest_expiry(entity) if b'"expiresAt"' in doc else None
        assert expiry_of(entity, doc) == expected
        assert prepare_creation(entity, doc).expires == expected
