"""What a store offers when several broker processes share it (an optional capability).

A :class:`SharedStore` is a :class:`~storage.base.Store` that several
broker processes can serve at once and that tells each of them what the others
changed (docs/scaling.md):

* a change feed: once :meth:`SharedStore.share` has named this process, every
  entity write, record write (subscriptions...) and stored-@context change is
  also appended to a feed, atomically with the change; :meth:`read_feed`
  returns what OTHER processes appended after a position;
* leases: named, expiring, exclusive claims (one owner per subscription, one
  timer per periodic subscription), renewed by their owner;
* fencing: every hand-over of a lease increments its ``epoch``; a write guarded
  by a lease (:meth:`SharedStore.put_fenced`, the delivery counters of a
  subscription) is done only while the writer still holds the lease with the
  epoch it was granted, so a process that lost a lease without noticing (paused,
  slow) cannot overwrite what the next holder wrote;
* marks: :meth:`SharedStore.feed_mark` is a point of the store's history at or
  after every change committed before the call, and every feed item carries the
  mark of its commit (:attr:`FeedItem.mark`), so a process can tell a change
  committed before something it learnt of (a subscription's creation) from one
  committed after.

The embedded SQLite store implements it (``sqlite_feed``), which is how several
processes on one host (``--workers N``) cooperate; the MongoDB store implements it
with change streams and ``find_one_and_update`` leases (storage/mongo/shared.py),
which is how processes on several hosts cooperate on one replica set.  The memory
store is private to its process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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
    ``mark``: where the change was committed in the store's history, comparable with
    :meth:`SharedStore.feed_mark` (the feed sequence on SQLite, the cluster time of
    the change on MongoDB).
    """

    seq: int
    origin: str
    tenant: str
    kind: str
    collection: str
    key: str
    before: Entity | None
    after: Entity | None
    mark: int = 0


@dataclass(frozen=True, slots=True)
class Fence:
    """A lease as its holder was granted it: the fencing token of guarded writes."""

    name: str
    owner: str
    epoch: int


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

    async def lease_epoch(self, name: str, owner: str) -> int | None:
        """The epoch of the lease ``name`` if ``owner`` holds it (unexpired), else None."""

    async def put_fenced(self, tenant: str, collection: str, record_id: str,
                         document: dict[str, Any], lease: Fence) -> bool:
        """Replace an existing record only while ``lease`` is held with its epoch, in one
        atomic step; False (nothing written) if the lease changed hands or the record
        is gone."""

    async def feed_mark(self) -> int:
        """A mark at or after that of every change committed before the call."""


def shared(store: object) -> SharedStore | None:
    """The store as a SharedStore, or None if it cannot be shared between processes."""
    return store if isinstance(store, SharedStore) else None


__all__ = ["CONTEXT", "ENTITY", "RECORD", "FeedItem", "Fence", "SharedStore", "shared"]
