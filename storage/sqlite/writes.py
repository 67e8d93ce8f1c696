"""Many entity writes of one tenant on the writer thread: mutations first, then the rows.

The one write path of :class:`~storage.sqlite.store.SqliteStore`: a batch
(``modify_many``) and the single writes the writer thread found queued together
(``modify``, grouped by :class:`~storage.sqlite.threads.Worker`) both come here.
The mutations run first, in order, on the states read in one statement (an id
given twice sees its first result); then the net change of each entity is
written with one ``executemany`` per table (:mod:`.bulk`) and the history of all
the writes with one per table (:mod:`.history_batch`).  A mutation that raises is
that write's error: nothing of it is written, the others are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from ngsi_ld.operations import KEEPS_CURRENT
from ngsi_ld.temporal import WRITE_TIME, History

from ..base import Change, Entity, Mutation, Recorder
from ..sharing import ENTITY
from . import feed, sql
from .bulk import Rows
from .history import SqliteHistory
from .history_rows import EncodedHistory, encode_write

__all__ = ["Item", "Result", "write_all"]

#: one write: the entity id, its mutation, and what records its history (None: nothing)
Item = tuple[str, Mutation, Recorder | None]
#: (True, the Change) or (False, what the mutation raised)
Result = tuple[bool, Any]


def write_all(conn: sqlite3.Connection, tenant: str, items: Sequence[Item],
              history: SqliteHistory, origin: str | None) -> list[Result]:
    """Apply ``items`` in order in the caller's transaction (see the module docstring);
    ``origin``: this process's name in the change feed of a shared file (None: not
    shared)."""
    if len(items) == 1:  # the usual single write: the plain lookup is the cheaper one
        docs = {items[0][0]: sql.read_doc(conn, tenant, items[0][0])}
    else:
        docs = sql.read_docs(conn, tenant, list(dict.fromkeys(i for i, _, _ in items)))
    if origin is not None and any(r is not None for _, _, r in items):
        history.sync(conn)  # processes sharing the file number instances too
    originals: dict[str, Entity | None] = {}
    latest: dict[str, tuple[Entity | None, bytes | None]] = {}
    results: list[Result] = []
    written: set[str] = set()
    histories: list[History | EncodedHistory] = []
    for entity_id, mutation, record in items:
        if entity_id in latest:
            before, raw = latest[entity_id]
        else:
            raw = docs[entity_id]
            before = None if raw is None else orjson.loads(raw)
            originals[entity_id] = before
            latest[entity_id] = (before, raw)
        current = None
        if raw is not None:
            # the mutation gets its own copy unless it promises only to read it
            keeps = getattr(mutation, KEEPS_CURRENT, False)
            current = before if keeps else orjson.loads(raw)
        try:
            after = mutation(current)
            encoded = None if after is None else orjson.dumps(after)
            recorded: History | EncodedHistory | None = None
            if record is not None:
                # the standard recorder's history is encoded here, without Instances
                at = getattr(record, WRITE_TIME, None)
                recorded = (record(before, after, history.new_instance_id) if at is None
                            else encode_write(before, after, at, history.new_instance_number))
        except Exception as exc:
            results.append((False, exc))
            continue
        latest[entity_id] = (after, encoded)
        written.add(entity_id)
        results.append((True, Change(entity_id, before, after)))
        if recorded is not None:  # the write's history, in its transaction
            histories.append(recorded)
        if origin is not None and (before is not None or after is not None):
            feed.append(conn, origin, tenant, ENTITY, entity_id, before=raw, after=encoded)
    history.record(conn, tenant, histories)
    rows = Rows(tenant)
    for entity_id in written:
        after, encoded = latest[entity_id]
        rows.add(entity_id, originals[entity_id], after, encoded)
    if any(latest[i][0] is not None for i in written):
        sql.insert_tenant(conn, tenant)  # storing an entity makes its tenant exist
    rows.write(conn, sql.next_version)
    return results
