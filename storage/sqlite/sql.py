"""The SQLite schema and the statements of :class:`SqliteStore`, as plain functions.

Every function takes an open ``sqlite3.Connection`` and runs on the thread that
owns it (the writer thread or a reader thread); nothing here knows about
asyncio.  Entity documents are orjson BLOBs; the index tables of ``sqlite_index``
(``entity_types``, ``attr_values``...) are kept in step with every write so that
selecting by type or by attribute name reads an index instead of the entities table.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson

from ..base import DEFAULT_TENANT, ContextRecord, Entity
from ..versioned import Versioned
from . import index as sqlite_index
from . import stats as sqlite_stats
from .bulk import Rows
from .known import StoreConnection
from .names import NameCache

# 2: the query indexes of sqlite_index (attribute values, R*Tree)
# 3: entities.version, changed by every write (render caches are keyed by it)
# 4: entities.expires_at, when the first part of the entity expires (clause 4.22)
# 5: discovery_stats, the discovery counters kept on write (sqlite_stats)
# 6: the index tables keyed by the numbers of sqlite_names (rebuilt on open: index.create)
# 7: entity_attrs folded into attr_values (marker rows; rebuilt on open: index.create)
# 8: temporal_packs a rowid table (converted on open: history_packs.create)
# 9: a pack's body may be its entity's document (history_packs; older packs read as before)
# 10: a pack's body may be a zstd frame of a dictionary in pack_dicts (pack_codec)
# 11: a Point of the lon/lat domain indexed by the cell in its attr_values row, not in
#     the R*Tree (sqlite_geocells; the indexes rebuilt on open: index.create)
# 12: temporal_packs.sig, the signature of a pack's attribute names (pack_signature;
#     added on open by history_packs.create, older packs NULL: settled by any read)
# 13: the indexes temporal_series_attribute (tenant, attribute) and temporal_packs_sig
#     (tenant, sig): a query by attrs reads the Entities that may have them (created on
#     open by history_sql.create_tables and history_packs.create)
# 14: temporal_pack_names, the attribute names of each pack signature (pack_names;
#     created on open by history_packs.create, the signatures of older packs NULL: any)
SCHEMA_VERSION = 14
_CELLS_SINCE = 11
_STATS_SINCE = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY
) WITHOUT ROWID;
-- A rowid table: documents can be large, which WITHOUT ROWID tables handle badly.
CREATE TABLE IF NOT EXISTS entities (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    doc BLOB NOT NULL,
    created_at TEXT,
    modified_at TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER,
    PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS records (
    tenant TEXT NOT NULL,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    document BLOB NOT NULL,
    PRIMARY KEY (tenant, collection, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contexts (
    url TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    document BLOB NOT NULL,
    created_at TEXT NOT NULL,
    extra BLOB NOT NULL
);
"""


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal.

    ``synchronous=NORMAL`` in WAL mode: a COMMIT has handed its pages to the
    operating system before it returns, so an acknowledged write survives the
    broker process being killed (even with SIGKILL); only a power loss or an OS
    crash can lose the last few transactions.
    """
    bind_plainly()
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0,
                           factory=StoreConnection)
    conn.names = NameCache()
    conn.execute("PRAGMA busy_timeout = 10000")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        _retry_locked(conn, "PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # After a burst of writes, truncate the WAL back to a bounded size.
        conn.execute("PRAGMA journal_size_limit = 67108864")
    return conn


def bind_plainly() -> None:
    """Let the sqlite3 module bind ``None`` and ``bytes`` parameters without looking
    for an adapter they do not have.

    CPython's module (3.11) binds an int, float, str or bytearray as it is, but asks
    its adapter protocol about any other parameter, NULL and BLOB ones included: it
    looks the type up in ``sqlite3.adapters``, then looks for
    ``PrepareProtocol.__adapt__``, whose absence it learns from an AttributeError
    formatted and dropped, then for the value's ``__conform__``, and binds the value
    as it was.  A usual PATCH binds five such parameters (its document, NULL columns
    of its rows and history row), a small create five, a Streetlight create seven:
    ~0.3 µs each (~2,400 instructions).  Registered adapters that give each value
    back as it is (``bytes`` gives an exact ``bytes`` itself) end the look-up at its
    first step: the values bound, hence the rows stored and read, are the same
    (issue 19).  The registry is the process's; these two adapters change no value,
    for any connection."""
    sqlite3.register_adapter(bytes, bytes)
    sqlite3.register_adapter(type(None), _null)


def _null(value: None) -> None:
    return value


#: how long a connection start-up retries a statement SQLite refused as locked
LOCKED_RETRY_SECONDS = 10.0


def begin_read(conn: sqlite3.Connection) -> None:
    """BEGIN a read transaction on ``conn``: what its connection kept of the snapshot
    of an earlier one (``known.StoreConnection.snapshot``) is not this one's."""
    if isinstance(conn, StoreConnection):
        conn.snapshot = None
    conn.execute("BEGIN")


class ReadTransaction:
    """Reads of one snapshot: a read transaction, or the one already open (a reader
    thread runs each batch of jobs in one, ``threads.Worker``).  A class, not a
    ``contextmanager``: it is on the path of every query."""

    __slots__ = ("_began", "_conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._began = False

    def __enter__(self) -> None:
        if not self._conn.in_transaction:
            begin_read(self._conn)
            self._began = True

    def __exit__(self, *exc: object) -> None:
        if self._began:
            self._conn.execute("COMMIT")


def _retry_locked(conn: sqlite3.Connection, statement: str) -> None:
    """Run ``statement``, retrying while SQLite answers "database is locked".

    Setting the journal mode needs a lock SQLite does not wait for with the busy
    handler when another process holds a conflicting one (deadlock avoidance):
    two broker processes starting together on one file, or a worker restarted
    while another writes, got "database is locked" at once.  Runs on a store
    thread, never on the event loop, so sleeping here blocks no request.
    """
    deadline = time.monotonic() + LOCKED_RETRY_SECONDS
    delay = 0.005
    while True:
        try:
            conn.execute(statement)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


class NewerSchema(sqlite3.DatabaseError):
    """The file was written by a later version of the broker, with a layout this one
    does not know: it is not opened (nor its schema version written back)."""


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables if needed (inside the caller's transaction)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        # A later layout (schema 6 changed the index tables): writing it with this
        # one's statements would fail request by request; refuse it whole instead.
        raise NewerSchema(
            f"the store file is of schema {row[0]}, written by a later version of the"
            f" broker; this one reads schema {SCHEMA_VERSION} and earlier: upgrade it"
        )
    columns = {info[1] for info in conn.execute("PRAGMA table_info(entities)")}
    if "version" not in columns:
        # A file of schema 1 or 2: its rows start at version 0, below every new one.
        conn.execute("ALTER TABLE entities ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
    if "expires_at" not in columns:
        # A file of schema 3 or below: nothing in it was transient (expiresAt was not read).
        conn.execute("ALTER TABLE entities ADD COLUMN expires_at INTEGER")
    # only transient entities are in it: the sweeper's "what expires next"
    conn.execute(
        "CREATE INDEX IF NOT EXISTS entities_expiry ON entities (expires_at)"
        " WHERE expires_at IS NOT NULL"
    )
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('entity_version', '0')")
    # A file written before schema 2: its entities are not in the query indexes yet;
    # before schema 11: its Points are boxes of the R*Tree, their rows markers.
    sqlite_index.create(conn, rebuild=row is not None and int(row[0]) < _CELLS_SINCE)
    # A file written before schema 5: its entities are not counted yet.
    sqlite_stats.create(conn, rebuild=row is not None and int(row[0]) < _STATS_SINCE)
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )


# -- tenants -------------------------------------------------------------------------
def tenant_row_exists(conn: sqlite3.Connection, tenant: str) -> bool:
    """Whether ``tenant`` has a row in the tenants table."""
    row = conn.execute("SELECT 1 FROM tenants WHERE name = ?", (tenant,)).fetchone()
    return row is not None


def insert_tenant(conn: sqlite3.Connection, tenant: str) -> None:
    """Record ``tenant`` (the default tenant is implicit and has no row)."""
    if tenant != DEFAULT_TENANT:
        conn.execute("INSERT OR IGNORE INTO tenants (name) VALUES (?)", (tenant,))


def tenant_names(conn: sqlite3.Connection) -> list[str]:
    """Every recorded tenant, sorted."""
    rows = conn.execute("SELECT name FROM tenants ORDER BY name").fetchall()
    return [name for (name,) in rows if name != DEFAULT_TENANT]


# -- entities ------------------------------------------------------------------------
def read_doc(conn: sqlite3.Connection, tenant: str, entity_id: str) -> bytes | None:
    """The stored document of one entity as bytes, or None."""
    row = conn.execute(
        "SELECT doc FROM entities WHERE tenant = ? AND id = ?", (tenant, entity_id)
    ).fetchone()
    return None if row is None else bytes(row[0])


def read_docs(
    conn: sqlite3.Connection, tenant: str, entity_ids: list[str]
) -> dict[str, bytes | None]:
    """The stored documents of several entities in one statement (None: absent)."""
    docs: dict[str, bytes | None] = dict.fromkeys(entity_ids)
    if entity_ids:
        docs.update(conn.execute(
            "SELECT id, doc FROM entities WHERE tenant = ?"
            " AND id IN (SELECT value FROM json_each(?))",
            (tenant, orjson.dumps(entity_ids).decode()),
        ))
    return docs


def read_versioned(conn: sqlite3.Connection, tenant: str, entity_id: str) -> Versioned | None:
    """The stored version and document of one entity (not decoded), or None."""
    # fetchall: the statement is finished, so no read transaction stays open on
    # the connection (the event loop's connection must see the next commit).
    rows = conn.execute(
        "SELECT version, doc FROM entities WHERE tenant = ? AND id = ?", (tenant, entity_id)
    ).fetchall()
    return Versioned(entity_id, rows[0][0], raw=rows[0][1]) if rows else None


# Versions.  The counter in ``meta`` numbers ranges of versions: a writer takes the
# next number T (begin_versions, outside any savepoint, so a job rolled back to its
# savepoint cannot give T back while T is in use), and its writes get T * 2**20 + 1,
# + 2, ..., in this transaction and the next ones as long as they commit (issue 19:
# the counter's UPDATE was a statement and a page of every transaction); a rollback
# may give T back, so the next transaction takes a new one.  Several processes writing
# one file take their T from the one counter, so no two writers share a T; the
# versions of an older file (plain counter values) are all below the new ones.  An
# entity's version is only compared for equality (a kept answer still current).
_SPAN = 1 << 20
#: one statement, not an UPDATE and a SELECT: each statement of the writer releases the
#: GIL and takes it back, which a busy event loop makes cost far more than the statement
_TAKE_VERSION = (
    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'entity_version'"
    " RETURNING CAST(value AS INTEGER)"
)
#: id(connection) -> [next version, last version, ...] of the open transaction's range
_clocks: dict[int, list[int]] = {}


def _take_counter(conn: sqlite3.Connection) -> int:
    # fetchall: the statement runs to its end (a write statement left unfinished on
    # the connection would hold the transaction's COMMIT)
    return int(conn.execute(_TAKE_VERSION).fetchall()[0][0])


def begin_versions(conn: sqlite3.Connection) -> None:
    """Reserve the version range of the transaction just begun on ``conn``: the rest of
    the range its earlier transactions took and committed when no other connection
    committed since (versions keep growing across the writers of a shared file), else a
    new one."""
    if not isinstance(conn, StoreConnection):
        base = _take_counter(conn) * _SPAN
        _clocks[id(conn)] = [base + 1, base + _SPAN - 1]
        return
    (seen,) = conn.execute("PRAGMA data_version").fetchone()
    clock = conn.clock
    if clock is None or clock[0] > clock[1] or clock[2] != seen:
        base = _take_counter(conn) * _SPAN
        clock = conn.clock = [base + 1, base + _SPAN - 1, seen]
    _clocks[id(conn)] = clock


def end_versions(conn: sqlite3.Connection, committed: bool = False) -> None:
    """The transaction on ``conn`` is over: its range is kept for the next one if it
    ``committed`` (a rollback may have given back the counter's number)."""
    _clocks.pop(id(conn), None)
    if not committed and isinstance(conn, StoreConnection):
        conn.clock = None


def next_version(conn: sqlite3.Connection) -> int:
    """A version number no entity of this file had before.

    From the transaction's range when the writer reserved one, else (or when
    the range is used up) from a fresh counter value; a write rolled back only
    leaves a gap.
    """
    clock = _clocks.get(id(conn))
    if clock is None or clock[0] > clock[1]:
        return _take_counter(conn) * _SPAN
    clock[0] += 1
    return clock[0] - 1


def write_entity(
    conn: sqlite3.Connection,
    tenant: str,
    entity_id: str,
    before: Entity | None,
    after: Entity | None,
) -> None:
    """Store ``after`` in place of ``before`` (None: delete), update the index tables and
    the discovery counters (a batch of one, see sqlite_bulk)."""
    rows = Rows(tenant)
    rows.add(entity_id, before, after)
    rows.write(conn, next_version)


def due_expiries(conn: sqlite3.Connection, now: int, limit: int) -> list[tuple[str, str]]:
    """(tenant, id) of the entities a part of which expired at ``now``, earliest first."""
    rows = conn.execute(
        "SELECT tenant, id FROM entities WHERE expires_at IS NOT NULL AND expires_at <= ?"
        " ORDER BY expires_at LIMIT ?",
        (now, limit),
    ).fetchall()
    return [(tenant, entity_id) for tenant, entity_id in rows]


def next_expiry(conn: sqlite3.Connection) -> int | None:
    """The earliest expires_at of any entity, or None."""
    (at,) = conn.execute(
        "SELECT MIN(expires_at) FROM entities WHERE expires_at IS NOT NULL"
    ).fetchone()
    return None if at is None else int(at)


# -- contexts ------------------------------------------------------------------------
def put_context(conn: sqlite3.Connection, record: ContextRecord) -> None:
    """Insert or replace a context record."""
    conn.execute(
        "INSERT OR REPLACE INTO contexts (url, kind, document, created_at, extra)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            record.url,
            record.kind,
            orjson.dumps(record.document),
            record.created_at,
            orjson.dumps(record.extra),
        ),
    )


def _record(row: tuple[Any, ...]) -> ContextRecord:
    url, kind, document, created_at, extra = row
    return ContextRecord(url, kind, orjson.loads(document), created_at, orjson.loads(extra))


_CONTEXT_COLUMNS = "url, kind, document, created_at, extra"


def get_context(conn: sqlite3.Connection, url: str) -> ContextRecord | None:
    """The context record for ``url``, or None."""
    row = conn.execute(f"SELECT {_CONTEXT_COLUMNS} FROM contexts WHERE url = ?", (url,)).fetchone()
    return None if row is None else _record(row)


def list_contexts(conn: sqlite3.Connection) -> list[ContextRecord]:
    """Every context record, sorted by URL."""
    rows = conn.execute(f"SELECT {_CONTEXT_COLUMNS} FROM contexts ORDER BY url").fetchall()
    return [_record(row) for row in rows]


def delete_context(conn: sqlite3.Connection, url: str) -> bool:
    """Remove a context record; False if there was none."""
    return conn.execute("DELETE FROM contexts WHERE url = ?", (url,)).rowcount > 0


# -- records -------------------------------------------------------------------------
def put_record(
    conn: sqlite3.Connection, tenant: str, collection: str, record_id: str, document: bytes
) -> None:
    """Insert or replace a record document (already orjson-encoded)."""
    conn.execute(
        "INSERT OR REPLACE INTO records (tenant, collection, id, document) VALUES (?, ?, ?, ?)",
        (tenant, collection, record_id, document),
    )


def get_record(
    conn: sqlite3.Connection, tenant: str, collection: str, record_id: str
) -> bytes | None:
    """The encoded record document, or None."""
    row = conn.execute(
        "SELECT document FROM records WHERE tenant = ? AND collection = ? AND id = ?",
        (tenant, collection, record_id),
    ).fetchone()
    return None if row is None else bytes(row[0])


def list_records(conn: sqlite3.Connection, tenant: str, collection: str) -> list[bytes]:
    """The encoded documents of a collection in a tenant, by id."""
    rows = conn.execute(
        "SELECT document FROM records WHERE tenant = ? AND collection = ? ORDER BY id",
        (tenant, collection),
    ).fetchall()
    return [bytes(row[0]) for row in rows]


def delete_record(conn: sqlite3.Connection, tenant: str, collection: str, record_id: str) -> bool:
    """Remove a record; False if there was none."""
    cursor = conn.execute(
        "DELETE FROM records WHERE tenant = ? AND collection = ? AND id = ?",
        (tenant, collection, record_id),
    )
    return cursor.rowcount > 0


def all_records(conn: sqlite3.Connection, collection: str) -> list[tuple[str, bytes]]:
    """(tenant, encoded document) for a collection in every tenant, by tenant then id."""
    rows = conn.execute(
        "SELECT tenant, document FROM records WHERE collection = ? ORDER BY tenant, id",
        (collection,),
    ).fetchall()
    return [(row[0], bytes(row[1])) for row in rows]
