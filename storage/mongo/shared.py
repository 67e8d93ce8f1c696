"""The SharedStore capability of the MongoDB store (storage/sharing.py, docs/scaling.md).

Several broker processes on one replica set: :meth:`SharedMixin.share` names
this process; from then on every document the store writes carries its name
(``origin``), entity deletions are announced to the change feed
(storage/mongo/feed.py), pre-images are turned on for each tenant's
``entities``, and the feed and lease operations of the protocol work.  On a
standalone server :meth:`SharedMixin.feed_head` (what a broker process calls at
start-up in cluster mode) raises :class:`~storage.mongo.feed.SharingUnsupported`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo.errors import OperationFailure

from ..base import DEFAULT_TENANT
from ..sharing import FeedItem, Fence
from . import leases
from .feed import LEASES, ChangeFeed, mark_of
from .keys import encode_doc
from .records import ENTITIES
from .schema import ORIGIN
from .support import database_name, faults, log

#: MongoDB's codes: the collection does not exist; it exists already
_NO_NAMESPACE = 26
_NAMESPACE_EXISTS = 48


class SharedMixin:
    """The feed and lease methods of ``MongoStore`` (see the module docstring)."""

    database: str
    _feed: ChangeFeed | None = None
    _leases_ready = False

    if TYPE_CHECKING:

        @property
        def client(self) -> Any: ...

        def _coll(self, tenant: str, name: str) -> Any: ...

        def _db(self, tenant: str) -> Any: ...

        def _records(self, tenant: str, collection: str) -> Any: ...

    def share(self, origin: str) -> None:
        """From now on, let other processes follow this one's changes (call before open)."""
        self._feed = ChangeFeed(lambda: self.client, self.database, origin)

    @property
    def origin(self) -> str | None:
        """The name of this process among those sharing the store; None if not shared."""
        return None if self._feed is None else self._feed.origin

    def stamp(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` with the writing process's name, when the store is shared."""
        if self._feed is not None:
            doc[ORIGIN] = self._feed.origin
        return doc

    def deleting(self, tenant: str, entity_id: str, version: Any) -> None:
        """Announce a conditional entity deletion to the feed (then :meth:`deleted`)."""
        if self._feed is not None:
            self._feed.deleting(database_name(self.database, tenant), entity_id, version)

    def deleted(self, tenant: str, entity_id: str, version: Any, done: bool) -> None:
        """Whether an announced deletion happened (its event is then not fed back)."""
        if self._feed is not None:
            self._feed.deleted(database_name(self.database, tenant), entity_id, version, done)

    async def _with_pre_images(self, tenant: str) -> None:
        """Turn on change-stream pre-images for the tenant's ``entities`` (shared only)."""
        if self._feed is None:
            return
        db = self._db(tenant)
        option = {"changeStreamPreAndPostImages": {"enabled": True}}
        with faults("collection options"):
            try:
                await db.command("collMod", ENTITIES, **option)
            except OperationFailure as exc:
                if exc.code != _NO_NAMESPACE:
                    log.error("pre-images cannot be turned on for %s.%s: %s", db.name,
                              ENTITIES, exc)
                    return
                try:
                    await db.command("create", ENTITIES, **option)
                except OperationFailure as again:
                    if again.code != _NAMESPACE_EXISTS:
                        raise
                    await db.command("collMod", ENTITIES, **option)

    # -- the feed ----------------------------------------------------------------------
    def _started_feed(self) -> ChangeFeed:
        if self._feed is None:
            raise RuntimeError("the MongoDB store is not shared: call share() before open()")
        return self._feed

    async def feed_head(self) -> int:
        """Start following the change stream (SharingUnsupported on a standalone server);
        the position of the last change seen."""
        feed = self._started_feed()
        if not feed.started:
            with faults("change stream"):
                await feed.start()
        return feed.head()

    async def read_feed(self, after: int, limit: int = 1000) -> tuple[list[FeedItem], int, int]:
        """Other processes' changes after ``after`` (from memory: no I/O)."""
        return self._started_feed().read(after, limit)

    async def trim_feed(self, older_than: float) -> int:
        """Forget the changes seen before ``older_than`` (epoch seconds)."""
        with faults("change feed"):
            return await self._started_feed().trim(older_than)

    async def close_feed(self) -> None:
        """Stop following the change stream (the store's close calls it)."""
        if self._feed is not None:
            await self._feed.close()

    # -- leases (storage/mongo/leases.py) -------------------------------------------------
    async def _leases(self) -> Any:
        coll = self._coll(DEFAULT_TENANT, LEASES)
        if not self._leases_ready:
            keys, options = leases.LEASE_INDEX
            with faults("index creation"):
                await coll.create_index(keys, **options)
            self._leases_ready = True
        return coll

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Hold ``name`` if it is free, expired or ours."""
        return await leases.acquire(await self._leases(), name, owner, ttl)

    async def renew_leases(self, owner: str, ttl: float) -> list[str]:
        """Extend the leases ``owner`` holds; their names."""
        return await leases.renew(await self._leases(), owner, ttl)

    async def release_leases(self, owner: str, names: list[str] | None = None) -> None:
        """Give up leases of ``owner`` (None: all)."""
        await leases.release(await self._leases(), owner, names)

    async def drop_lease(self, name: str) -> None:
        """Remove the lease ``name`` whoever holds it."""
        await leases.drop(await self._leases(), name)

    async def lease_holders(self, prefix: str) -> dict[str, str]:
        """Unexpired leases under ``prefix``: name -> owner."""
        return await leases.holders(await self._leases(), prefix)

    async def lease_epoch(self, name: str, owner: str) -> int | None:
        """The epoch of the lease ``name`` if ``owner`` holds it, else None."""
        return await leases.epoch(await self._leases(), name, owner)

    async def put_fenced(self, tenant: str, collection: str, record_id: str,
                         document: dict[str, Any], lease: Fence) -> bool:
        """Replace an existing record while ``lease`` is held with its epoch (one
        transaction with the lease: storage/mongo/leases.py); False otherwise."""
        records = self._records(tenant, collection)
        doc = self.stamp({"_id": record_id, "doc": encode_doc(document)})
        return await leases.put_fenced(self.client, await self._leases(), records, doc, lease)

    async def feed_mark(self) -> int:
        """The ``operationTime`` of a read command: the cluster time of the newest oplog
        entry, at or after that of every change committed before (storage/mongo/feed.py)."""
        with faults("change feed"):
            reply = await self._db(DEFAULT_TENANT).command("ping")
        return mark_of(reply.get("operationTime"))


__all__ = ["SharedMixin"]
