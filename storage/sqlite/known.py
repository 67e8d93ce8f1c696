"""What a reading connection learnt of the stored data, kept while no commit happened.

Planning a query asks the same questions of the store at every request (is a
type implied by an attribute, is a string some VocabProperty's expansion) and
builds the same plan, and a page's entity versions are looked up one B-tree
seek pair each; between two commits none of this can change.  ``PRAGMA
data_version`` of a connection changes whenever another connection committed
(SQLite, "PRAGMA data_version"), and read inside a transaction it belongs to
that transaction's snapshot: so what a connection learnt is reused as long as
its data_version holds, and dropped at the first read transaction that sees a
commit.  Within one read transaction the snapshot, and so its data_version,
cannot change: a reader's batch of queries (one transaction, ``threads.Worker``)
asks SQLite once, at its first query, and the next ones take the answer kept
for the transaction (:attr:`StoreConnection.snapshot`, cleared by
:func:`~storage.sqlite.sql.begin_read` at every read transaction's BEGIN).

The ids a merge plan paged are kept too, by their position in the query's
order (:class:`Anchors`): a later page of the same query in the same snapshot
starts its index ranges after the id just before it (keyset paging) instead of
stepping over ``offset`` rows.  Only the place to start is taken from there;
the page itself is always read from the database.

Only connections made by ``sqlite_sql.connect`` (:class:`StoreConnection`)
keep answers; a plain ``sqlite3.Connection`` asks SQLite every time.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_left, insort
from collections.abc import Callable, Hashable, Sequence

import orjson

from ngsi_ld.query import EntityQuery

from ..versioned import Versioned
from .names import NameCache
from .query import Plan

#: most entity versions one connection keeps of a tenant (dropped all at once beyond it)
MAX_VERSIONS = 32768
#: most planning answers one connection keeps
MAX_FACTS = 4096
#: most query plans one connection keeps
MAX_PLANS = 512
#: most positions of query pages one connection keeps (all queries together)
MAX_ANCHORS = 8192


class StoreConnection(sqlite3.Connection):
    """A connection of the store: a ``sqlite3.Connection`` that can keep a :class:`Known`
    and the numbers of index names it wrote (``sqlite_names``)."""

    known: Known | None = None
    names: NameCache | None = None
    #: the Known of the open read transaction once :func:`known_of` asked its
    #: data_version (None: not asked in it yet; ``sql.begin_read`` clears it)
    snapshot: Known | None = None
    #: a writer's range of entity versions, [next, last, the data_version it was
    #: used under], kept from one committed transaction to the next (``sql.begin_versions``)
    clock: list[int] | None = None


class Anchors:
    """Ids of one query's matches by their position in id order, as read in one snapshot."""

    __slots__ = ("ids", "positions")

    def __init__(self) -> None:
        self.positions: list[int] = []  # sorted
        self.ids: dict[int, str] = {}

    def before(self, offset: int) -> tuple[int, str] | None:
        """The known position closest below ``offset``, and its id; None if none is."""
        i = bisect_left(self.positions, offset)
        if i == 0:
            return None
        position = self.positions[i - 1]
        return position, self.ids[position]

    def learn(self, offset: int, ids: Sequence[str]) -> int:
        """Keep ``ids`` as the matches from position ``offset`` on; the number of new ones."""
        known, positions = self.ids, self.positions
        added = 0
        for position, entity_id in enumerate(ids, offset):
            if position not in known:
                known[position] = entity_id
                insort(positions, position)
                added += 1
        return added


class Known:
    """Answers learnt under one data_version of one connection (see the module docstring)."""

    __slots__ = ("anchor_count", "data_version", "facts", "plans", "versions")

    def __init__(self, data_version: int) -> None:
        self.data_version = data_version
        self.facts: dict[Hashable, bool] = {}
        #: tenant -> entity id -> the entity at its version, without its document (the
        #: same object on every page that shows it: never given a document, see
        #: :func:`page_versions`)
        self.versions: dict[str, dict[str, Versioned]] = {}
        #: (tenant, the query's identity) -> (the query, its plan, the positions of its
        #: matches read so far): a plan depends only on the query and on answers kept
        #: here (the stream sizes only change by a write); the query is kept so that
        #: its identity is not reused meanwhile
        self.plans: dict[tuple[str, int], tuple[EntityQuery, Plan, Anchors]] = {}
        self.anchor_count = 0

    def plan(self, tenant: str, query: EntityQuery, make: Callable[[], Plan]) -> Plan:
        """The plan kept for ``query``, else ``make()``'s (kept)."""
        kept = self.plans.get((tenant, id(query)))
        if kept is not None and kept[0] is query:
            return kept[1]
        plan = make()
        if len(self.plans) >= MAX_PLANS:
            self.plans.clear()
            self.anchor_count = 0
        self.plans[tenant, id(query)] = (query, plan, Anchors())
        return plan

    def anchors(self, tenant: str, query: EntityQuery) -> Anchors | None:
        """The positions read so far of ``query``'s matches (after :meth:`plan`)."""
        kept = self.plans.get((tenant, id(query)))
        return kept[2] if kept is not None and kept[0] is query else None

    def learn(self, anchors: Anchors, offset: int, ids: Sequence[str]) -> None:
        """Keep ``ids`` in ``anchors`` from position ``offset``, within the budget."""
        if len(ids) > MAX_ANCHORS:  # a whole unpaged answer: not worth the memory
            return
        if self.anchor_count + len(ids) > MAX_ANCHORS:
            for _, _, kept in self.plans.values():
                kept.positions.clear()
                kept.ids.clear()
            self.anchor_count = 0
        self.anchor_count += anchors.learn(offset, ids)

    def fact(self, key: Hashable, ask: Callable[[], bool]) -> bool:
        """The answer kept for ``key``, else ``ask()``'s (kept)."""
        found = self.facts.get(key)
        if found is None:
            if len(self.facts) >= MAX_FACTS:
                self.facts.clear()
            found = self.facts[key] = ask()
        return found


def known_of(conn: sqlite3.Connection) -> Known:
    """The answers of ``conn``'s current snapshot; call inside a read transaction.

    Reading ``PRAGMA data_version`` starts the transaction's snapshot if no
    statement did yet, so what is kept always describes that snapshot; asked once
    a transaction on a store connection (see the module docstring).
    """
    if not isinstance(conn, StoreConnection):
        return Known(conn.execute("PRAGMA data_version").fetchone()[0])
    if conn.snapshot is not None and conn.in_transaction:
        return conn.snapshot
    (data_version,) = conn.execute("PRAGMA data_version").fetchone()
    known = conn.known
    if known is None or known.data_version != data_version:
        known = conn.known = Known(data_version)
    if conn.in_transaction:
        conn.snapshot = known
    return known


def page_versions(
    conn: sqlite3.Connection, known: Known, tenant: str, ids: list[str]
) -> list[Versioned]:
    """The entities of ``ids`` (in that order) with their versions, in the caller's
    read transaction: the versions ``known`` has, the others in one statement.

    The items are kept by ``known`` and shared by later pages: the caller must
    not give them a document (it reads documents into copies).  An id without
    an entity row is left out (the index rows are written with the entity in
    one transaction, so it does not happen).
    """
    versions = known.versions.get(tenant)
    if versions is None:
        versions = known.versions[tenant] = {}
    got = [versions.get(entity_id) for entity_id in ids]
    if None in got:
        missing = [i for i, item in zip(ids, got, strict=True) if item is None]
        (found,) = conn.execute(
            "SELECT json_group_array(json_array(id, version)) FROM entities"
            " WHERE tenant = ? AND id IN (SELECT value FROM json_each(?))",
            (tenant, orjson.dumps(missing).decode()),
        ).fetchone()
        pairs = {i: Versioned(i, v) for i, v in orjson.loads(found)}
        if len(versions) + len(pairs) > MAX_VERSIONS:
            versions.clear()
        versions.update(pairs)
        got = [pairs.get(i) if v is None else v for i, v in zip(ids, got, strict=True)]
    return [item for item in got if item is not None]


__all__ = [
    "MAX_ANCHORS", "MAX_FACTS", "MAX_PLANS", "MAX_VERSIONS", "Anchors", "Known",
    "StoreConnection", "known_of", "page_versions",
]
