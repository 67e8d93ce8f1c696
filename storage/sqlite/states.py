"""The entities the writer updated last, decoded, kept between its transactions.

A write that replaces or patches a stored entity needs its state before, decoded
from the stored document (``orjson.loads``): about 10 µs of a replaced Streetlight
(~5 KB), the one large cost left on the writer thread besides the encodings and
SQLite (benchmarks/README.md, issue 19).  The writer keeps the states it wrote by
updates, with the bytes it stored for each, and a later write of the same entity
takes the kept state instead of decoding the stored bytes, **only when those bytes
are the very bytes read from the row now** (a comparison of ~5 KB, ~0.1 µs).  So the
state used is always the decode of what is stored, whoever wrote it: another
broker process on a shared file (docs/scaling.md), a transaction rolled back, a
test writing rows by itself.  What :mod:`.writes` keeps is ``after`` of a write,
whose encoding is the stored document; the internal form is JSON (dicts of string
keys, lists, strings, finite floats, integers, booleans, None; ``orjson`` turns
nothing else into the same bytes), so its decode would be equal to it, class for
class and key order included (:func:`same_json`).

Shared, never copied: a kept state is also the ``after`` of the Change that wrote
it and the ``before`` of the next one, read by the event loop (subscriptions,
notifications, the expiry sweeper) while the writer may read it again: nothing
may change it (tests/test_sqlite_states.py checks every consumer).  The mutations
that keep the current entity (``KEEPS_CURRENT``) read it only; the others get their
own decode, as before.

Bounded: at most :data:`MAX_ENTRIES` states and :data:`MAX_BYTES` of their stored
documents (a decoded Streetlight takes ~4 times its ~5 KB document: ~25 KB with
them, ~40 MB when full of Streetlights), the least recently used let go first.
Only updates are kept (a creation, a load's entities are not: a load of a million
entities would only churn it), and a deletion lets its entity go.  The writes of a
transaction rolled back (or of a job rolled back to its savepoint) are let go too:
what they kept no longer matches the row, so would never be used, only held.
"""

from __future__ import annotations

import os
import sqlite3
from collections import OrderedDict
from typing import Any

import orjson

from ..base import Entity

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "States", "same_json"]

#: most states kept (a benchmark's pool of 1,000 entities fits)
MAX_ENTRIES = 2048
#: most bytes of their stored documents (~1,700 Streetlights: ~40 MB of RSS in all)
MAX_BYTES = 8 * 1024 * 1024
#: with ``BROKER_CHECK_STATES=1`` every state used is compared with the decode of the
#: stored bytes (:func:`same_json`) and an AssertionError raised if they differ: the
#: test suite run so proves that nothing changed a kept state (not for production:
#: it decodes what the states save)
CHECK = os.environ.get("BROKER_CHECK_STATES") == "1"


def same_json(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are the same JSON value, class for class (``1``, ``1.0``
    and ``True`` differ, a tuple is no list) and their objects' keys in the same order."""
    if a.__class__ is not b.__class__:
        return False
    if a.__class__ is dict:
        return (list(a) == list(b)
                and all(same_json(v, b[k]) for k, v in a.items()))
    if a.__class__ is list:
        return len(a) == len(b) and all(map(same_json, a, b))
    return bool(a == b) and a.__class__ in (str, int, float, bool, type(None))


class States:
    """The decoded states of the entities updated last (see the module docstring)."""

    __slots__ = ("_bytes", "_entries", "_touched", "hits", "max_bytes", "max_entries")

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        #: (tenant, entity id) -> (the stored document, its decoded state)
        self._entries: OrderedDict[tuple[str, str], tuple[bytes, Entity]] = OrderedDict()
        self._bytes = 0
        #: the keys kept or let go in the open transaction (let go if it rolls back)
        self._touched: list[tuple[str, str]] = []
        #: states used instead of a decode, so far
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """The bytes of the stored documents of the states kept."""
        return self._bytes

    def get(self, tenant: str, entity_id: str, raw: bytes) -> Entity | None:
        """The kept state of the entity whose stored document is ``raw``, or None."""
        key = (tenant, entity_id)
        entry = self._entries.get(key)
        if entry is None or entry[0] != raw:
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        if CHECK:
            _check(entry[1], raw)
        return entry[1]

    def keep(self, tenant: str, entity_id: str, state: Entity, stored: bytes) -> None:
        """Keep ``state``, whose encoding ``stored`` the entity's row now holds."""
        key = (tenant, entity_id)
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old[0])
        entries[key] = (stored, state)
        self._bytes += len(stored)
        self._touched.append(key)
        while len(entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (gone, _) = entries.popitem(last=False)
            self._bytes -= len(gone)

    def drop(self, tenant: str, entity_id: str) -> None:
        """Let the entity's state go (it was deleted or written another way)."""
        old = self._entries.pop((tenant, entity_id), None)
        if old is not None:
            self._bytes -= len(old[0])

    def committed(self, conn: sqlite3.Connection) -> None:
        """The writer's commit listener: what the transaction kept stays."""
        self._touched.clear()

    def rolled_back(self) -> None:
        """The writer's rollback listener: what the open transaction kept is let go."""
        for tenant, entity_id in self._touched:
            self.drop(tenant, entity_id)
        self._touched.clear()

    def clear(self) -> None:
        """Let every state go."""
        self._entries.clear()
        self._bytes = 0
        self._touched.clear()


def _check(state: Entity, raw: bytes) -> None:
    if not same_json(state, orjson.loads(raw)):
        raise AssertionError("a kept entity state differs from its stored document")
