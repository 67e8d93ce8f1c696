"""The change feed of the MongoDB store, on change streams (docs/scaling.md).

Several broker processes on one MongoDB replica set (or sharded cluster) learn
what the others changed from ONE change stream per process over the whole
deployment (``client.watch``), filtered on the server by :func:`watch_pipeline`:

* the store's databases only (``<db>`` and ``<db>-<tenant>``), the collections
  other processes care about (entities, records such as subscriptions, the
  hosted @contexts), inserts, replacements and deletions;
* not this process's own writes: every document the store writes carries
  ``origin``, the writing process (:data:`ORIGIN`), and the stream drops those.
  A deletion has no document after it, so the store tells the feed beforehand
  which (database, entity, version) it is deleting (:meth:`ChangeFeed.deleting`),
  and the feed skips that event once the deletion is known to have happened;
* entity events carry the document after (``fullDocument``) and before the
  change (``fullDocumentBeforeChange``: pre-images, turned on for ``entities``
  with ``collMod changeStreamPreAndPostImages``, MongoDB 6.0 or later), which is
  what the subscription matcher needs.

Every event carries its ``clusterTime`` (the oplog time of the change), which
becomes the feed item's mark (:func:`mark_of`); :meth:`SharedMixin.feed_mark
<storage.mongo.shared.SharedMixin.feed_mark>` is the ``operationTime`` of a read
command, the time of the newest oplog entry, so a change committed before it
has a mark at or below it, one committed after a greater mark.

Events are buffered in memory and numbered; :meth:`ChangeFeed.read` serves the
``SharedStore.read_feed`` contract from that buffer (no I/O).  The resume token
of the last event handled is saved per process in ``<db>.feeds``
(``{_id: process, token, at}``, at most once a second), and the stream reopens
from it after an error; one that fell out of the oplog is reopened at the
present, and the gap is logged and counted as missed.

A standalone server has no change streams: sharing it is refused with
:class:`SharingUnsupported` (docs/mongodb.md says so), never silently degraded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from ..base import DEFAULT_TENANT
from ..sharing import CONTEXT, ENTITY, RECORD, FeedItem
from .records import CONTEXTS, ENTITIES, TENANTS
from .schema import ORIGIN, from_document

log = logging.getLogger("storage.mongo.feed")

#: resume tokens, one document per process (default tenant's database)
FEEDS = "feeds"
#: leases (storage/mongo/leases.py), default tenant's database
LEASES = "leases"
#: the store's own bookkeeping: no other process needs to hear of it
INTERNAL = (TENANTS, "discoveryStats", "temporal_entities", "temporal_instances",
            "temporal_outbox", FEEDS, LEASES)
#: events kept for readers; beyond, the oldest are dropped (and counted as missed)
BUFFER = 100_000
#: seconds between two saves of the resume token
SAVE_EVERY = 1.0
#: the first MongoDB with pre-images in change streams
NEEDED_VERSION = (6, 0)

#: MongoDB's codes: no change streams on a standalone server; resume point lost
_NO_STREAMS = 40573
_HISTORY_LOST = 286


class SharingUnsupported(RuntimeError):
    """The server cannot tell one process the others' changes (no change streams)."""


def watch_pipeline(database: str, origin: str) -> list[dict[str, Any]]:
    """The server-side filter of this process's change stream (see the module docstring)."""
    return [{"$match": {
        "ns.db": {"$regex": f"^{re.escape(database)}(-|$)"},
        "ns.coll": {"$nin": list(INTERNAL)},
        "operationType": {"$in": ["insert", "replace", "delete"]},
        f"fullDocument.{ORIGIN}": {"$ne": origin},
    }}]


def mark_of(time: Any) -> int:
    """A cluster time (BSON Timestamp) as an int of the same order; 0 when absent."""
    if time is None:
        return 0
    return (int(time.time) << 32) | int(time.inc)


def tenant_of(database: str, name: str) -> str:
    """The tenant whose database is ``name`` (the inverse of ``database_name``)."""
    return DEFAULT_TENANT if name == database else name[len(database) + 1:]


def feed_item(seq: int, database: str, event: dict[str, Any]) -> FeedItem:
    """The FeedItem of one change event."""
    ns = event["ns"]
    tenant = tenant_of(database, ns["db"])
    key = event["documentKey"]["_id"]
    after = event.get("fullDocument")
    before = event.get("fullDocumentBeforeChange")
    origin = str((after or {}).get(ORIGIN, ""))
    mark = mark_of(event.get("clusterTime"))
    if ns["coll"] == ENTITIES:
        return FeedItem(seq, origin, tenant, ENTITY, "", key,
                        None if before is None else from_document(before),
                        None if after is None else from_document(after), mark)
    if ns["coll"] == CONTEXTS and tenant == DEFAULT_TENANT:
        return FeedItem(seq, origin, tenant, CONTEXT, "", key, None, None, mark)
    return FeedItem(seq, origin, tenant, RECORD, ns["coll"], key, None, None, mark)


def _older(version: tuple[int, ...]) -> bool:
    return tuple(version[:2]) < NEEDED_VERSION


class ChangeFeed:
    """One process's change stream and the buffer it fills (see the module docstring)."""

    def __init__(self, client: Callable[[], Any], database: str, origin: str) -> None:
        self._client = client
        self.database = database
        self.origin = origin
        self._items: deque[tuple[float, FeedItem]] = deque()
        self._seq = 0  # number of the last event buffered
        self._dropped = 0  # events lost (buffer overflow, oplog gap) before they were read
        self._deleting: dict[tuple[str, str, Any], asyncio.Future[bool]] = {}
        self._stream: Any = None
        self._task: asyncio.Task[None] | None = None
        self._token: dict[str, Any] | None = None
        self._saved: dict[str, Any] | None = None
        self._last_save = 0.0

    @property
    def started(self) -> bool:
        return self._task is not None

    def _feeds(self) -> Any:
        return self._client()[self.database][FEEDS]

    async def check_server(self) -> None:
        """SharingUnsupported unless the server has change streams with pre-images."""
        admin = self._client().admin
        hello = await admin.command("hello")
        if "setName" not in hello and hello.get("msg") != "isdbgrid":
            raise SharingUnsupported(
                "several broker processes on MongoDB need a replica set or a sharded cluster "
                "(change streams); this server is standalone.  Run one broker process, or "
                "make it a replica set (a single member is enough: mongod --replSet rs0, "
                "then rs.initiate())")
        info = await admin.command("buildInfo")
        version = tuple(int(n) for n in info.get("versionArray", [0, 0])[:2])
        if _older(version):
            raise SharingUnsupported(
                f"several broker processes on MongoDB need MongoDB 6.0 or later (change "
                f"stream pre-images); this server is {info.get('version')}")

    async def start(self) -> None:
        """Check the server, open the stream at the present, follow it in the background."""
        await self.check_server()
        stored = await self._feeds().find_one({"_id": self.origin})
        self._saved = self._token = None if stored is None else stored.get("token")
        await self._open()
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def _open(self) -> None:
        try:
            self._stream = await self._client().watch(
                watch_pipeline(self.database, self.origin), full_document="updateLookup",
                full_document_before_change="whenAvailable", resume_after=self._token)
        except OperationFailure as exc:
            if exc.code == _NO_STREAMS:
                raise SharingUnsupported(str(exc)) from exc
            if exc.code != _HISTORY_LOST or self._token is None:
                raise
            log.error("the change stream cannot resume (%s): changes other processes made "
                      "meanwhile are missed; following from now", exc)
            self._dropped += 1
            self._token = None
            self._stream = await self._client().watch(
                watch_pipeline(self.database, self.origin), full_document="updateLookup",
                full_document_before_change="whenAvailable")

    async def _follow(self) -> None:
        while True:
            try:
                async for event in self._stream:
                    await self._take(event)
                    self._token = event["_id"]
                    if time.monotonic() - self._last_save >= SAVE_EVERY:
                        await self.save_token()
                log.warning("the change stream was closed by the server; reopening")
            except asyncio.CancelledError:
                raise
            except (PyMongoError, SharingUnsupported) as exc:
                log.warning("the change stream failed (%s); reopening", exc)
            await asyncio.sleep(1.0)
            try:
                await self._open()
            except (PyMongoError, SharingUnsupported) as exc:
                log.warning("the change stream cannot be reopened yet (%s)", exc)

    async def _take(self, event: dict[str, Any]) -> None:
        ns = event["ns"]
        if event["operationType"] == "delete" and ns["coll"] == ENTITIES:
            before = event.get("fullDocumentBeforeChange")
            key = (ns["db"], event["documentKey"]["_id"],
                   None if before is None else before.get("version"))
            pending = self._deleting.get(key)
            if pending is None and before is None:  # no pre-image: the id alone
                pending = next((f for k, f in self._deleting.items() if k[:2] == key[:2]), None)
            if pending is not None and await pending:
                return  # this process's own deletion, handled when it was made
        try:
            item = feed_item(self._seq + 1, self.database, event)
        except Exception:  # never stop the stream on one document
            log.exception("a change event could not be read: %r", event.get("documentKey"))
            return
        self._seq += 1
        self._items.append((time.time(), item))
        while len(self._items) > BUFFER:
            self._items.popleft()

    def deleting(self, database: str, entity_id: str, version: Any) -> asyncio.Future[bool]:
        """Announce a conditional deletion by this process; resolve the future with whether
        it happened (then its event is skipped), and call :meth:`deleted` after."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._deleting[(database, entity_id, version)] = future
        return future

    def deleted(self, database: str, entity_id: str, version: Any, done: bool) -> None:
        """The outcome of an announced deletion."""
        future = self._deleting.get((database, entity_id, version))
        if future is not None and not future.done():
            future.set_result(done)
        if not done or future is None:
            self._deleting.pop((database, entity_id, version), None)
        else:  # forgotten once its event has been skipped, or after a while
            asyncio.get_running_loop().call_later(
                60.0, self._deleting.pop, (database, entity_id, version), None)

    async def save_token(self) -> None:
        """Store the resume token of the last event handled (``<db>.feeds``)."""
        if self._token is None or self._token == self._saved:
            return
        self._last_save = time.monotonic()
        await self._feeds().replace_one(
            {"_id": self.origin},
            {"_id": self.origin, "token": self._token, "at": datetime.now(UTC)}, upsert=True)
        self._saved = self._token

    # -- the SharedStore reading side ------------------------------------------------
    def head(self) -> int:
        return self._seq

    def read(self, after: int, limit: int) -> tuple[list[FeedItem], int, int]:
        """Buffered items after ``after``, the new position, and how many were missed."""
        first = self._items[0][1].seq if self._items else self._seq + 1
        missed = max(0, first - after - 1) + self._dropped
        self._dropped = 0
        items = [item for _, item in self._items if item.seq > after][:limit]
        position = items[-1].seq if len(items) == limit else max(self._seq, after)
        return items, position, missed

    async def trim(self, older_than: float) -> int:
        """Forget the buffered items older than ``older_than`` and the saved tokens of
        processes silent since then."""
        trimmed = 0
        while self._items and self._items[0][0] < older_than:
            self._items.popleft()
            trimmed += 1
        await self._feeds().delete_many({
            "_id": {"$ne": self.origin}, "at": {"$lt": datetime.fromtimestamp(older_than, UTC)}})
        return trimmed

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._stream is not None:
            with contextlib.suppress(PyMongoError):
                await self.save_token()
                await self._stream.close()
            self._stream = None


__all__ = [
    "FEEDS", "INTERNAL", "LEASES", "ChangeFeed", "SharingUnsupported", "feed_item", "mark_of",
    "tenant_of",
    "watch_pipeline",
]
