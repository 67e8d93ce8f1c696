"""What a store offers when several broker processes share it (an optional capability).

A :class:`SharedStore` is a :class:`~storage.base.Store` that several
broker processes can serve at once and that tells each of them what the others
changed (docs/scaling.md):

* a change feed: once :meth:`SharedStore.share` has named this process, every
  entity write, record write (subscriptions...) and stored-@context change is
  also appended to a feed, atomically with the change; :meth:`read_feed`
  returns what OTHER processes appended after a position;
* leases: named, expiring, exclusive claims (one owner per subscription, one
  timer per periodic subscription), renewed by their owner.

The embedded SQLite store implements it (``sqlite_feed``), which is how several
processes on one host (``--workers N``) cooperate; the MongoDB store implements it
with change streams and ``find_one_and_update`` leases (storage/mongo/shared.py),
which is how processes on several hosts cooperate on one replica set.  The memory
store is private to its process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ngsi_ld.model import Entity

#: kinds of feed items
ENTITY = "entity"
RECORD = "record"
CONTEXT = "context"


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One committed change made by another process.

    ``entity``: ``key`` is the entity id, ``before``/``after`` its stored states;
    ``record``: ``collection``/``key`` name the record put or deleted;
    ``context``: ``key`` is the URL of the stored @context that changed.
    """

    seq: int
    origin: str
    tenant: str
    kind: str
    collection: str
    key: str
    before: Entity | None
    after: Entity | None


@runtime_checkable
class SharedStore(Protocol):
    """The feed and lease operations (see the module docstring)."""

    def share(self, origin: str) -> None:
        """From now on, append every change to the feed under ``origin`` (call before open)."""

    async def feed_head(self) -> int:
        """The current end of the feed: a new process starts reading from there."""

    async def read_feed(self, after: int, limit: int = 1000) -> tuple[list[FeedItem], int, int]:
        """Items of other origins after ``after``, the new position, items trimmed unread."""

    async def trim_feed(self, older_than: float) -> int:
        """Forget the items written before ``older_than`` (epoch seconds)."""

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Hold ``name`` for ``ttl`` seconds if it is free, expired or ours; True if held."""

    async def renew_leases(self, owner: str, ttl: float) -> list[str]:
        """Extend every lease ``owner`` still holds; their names."""

    async def release_leases(self, owner: str, names: list[str] | None = None) -> None:
        """Give up the named leases of ``owner`` (None: all of them)."""

    async def drop_lease(self, name: str) -> None:
        """Remove a lease whoever holds it (what it guarded was deleted)."""

    async def lease_holders(self, prefix: str) -> dict[str, str]:
        """Unexpired leases whose name starts with ``prefix``: name -> owner."""


def shared(store: object) -> SharedStore | None:
    """The store as a SharedStore, or None if it cannot be shared between processes."""
    return store if isinstance(store, SharedStore) else None


__all__ = ["CONTEXT", "ENTITY", "RECORD", "FeedItem", "SharedStore", "shared"]
