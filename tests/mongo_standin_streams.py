"""Change streams of the MongoDB stand-in (tests/mongo_standin.py): NOT MongoDB.

Exactly the change-stream behaviour the backend's feed (storage/mongo/feed.py)
relies on, so that two broker stores on one stand-in client can follow each
other's writes in CI, where no replica set can run:

* every write through the stand-in (insert, replace, update, delete, the
  requests of a ``bulk_write``, ``find_one_and_update``) appends one event to
  the client's log: ``_id`` (the resume token ``{"_data": "<hex position>"}``),
  ``operationType``, ``ns`` (``db``, ``coll``), ``documentKey``, ``clusterTime``
  (:func:`cluster_time`: a BSON Timestamp that grows by one increment per event,
  events of a transaction getting theirs at its commit, as in the oplog), and
  ``fullDocument`` for inserts and replacements (for updates only with
  ``full_document="updateLookup"``, and then the document as it is when the
  event is read, as MongoDB does);
* ``fullDocumentBeforeChange`` is given only for collections whose pre-images
  were turned on (``collMod`` or ``create`` with ``changeStreamPreAndPostImages``)
  and only when the stream asks for it (``whenAvailable`` / ``required``);
* ``client.watch(pipeline, resume_after=token)`` returns a stream of the events
  after the token (or after the end of the log at the call); only ``$match``
  stages are supported, evaluated by mongomock's matching engine on the event;
* a standalone stand-in (``StandInClient(standalone=True)``) refuses ``watch``
  with the error a standalone mongod gives (code 40573); a token older than
  what :meth:`ChangeLog.forget` kept fails with ChangeStreamHistoryLost (286).

The stand-in's read commands answer with an ``operationTime``, the cluster time
of the newest event (:meth:`ChangeLog.operation_time`), as a replica set
answers a read with read concern "local".  Nothing else of change streams
(sharding, ``$project``, invalidation on drop) is modelled.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from bson import Timestamp
from mongomock.filtering import filter_applies
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

#: the seconds of every stand-in cluster time (its increment orders the events)
EPOCH_SECONDS = 1_700_000_000


def cluster_time(position: int) -> Timestamp:
    """The cluster time of the event at ``position`` in the log."""
    return Timestamp(EPOCH_SECONDS, position + 1)


def token(position: int) -> dict[str, str]:
    """The resume token of the event at ``position`` in the log."""
    return {"_data": f"{position:016x}"}


class ChangeLog:
    """The stand-in server's log of changes (one per StandInClient)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.first = 0  # position of events[0]: what forget() dropped comes before
        self.pre_images: set[tuple[str, str]] = set()
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def end(self) -> int:
        return self.first + len(self.events)

    def append(self, op: str, db: str, coll: str, key: Any,
               before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """Record one write (called by the stand-in's write methods after they applied it)."""
        event: dict[str, Any] = {
            "_id": token(self.end), "operationType": op, "ns": {"db": db, "coll": coll},
            "documentKey": {"_id": key}, "clusterTime": cluster_time(self.end),
        }
        if after is not None:
            event["fullDocument"] = copy.deepcopy(after)
        if before is not None and (db, coll) in self.pre_images:
            event["fullDocumentBeforeChange"] = copy.deepcopy(before)
        self.events.append(event)
        self.wake()

    def operation_time(self) -> Timestamp:
        """What a read command answers as ``operationTime``: the newest event's time."""
        return Timestamp(EPOCH_SECONDS, self.end)

    def wake(self) -> None:
        """Let every waiting stream look again (a new event, or the server went down)."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def forget(self) -> None:
        """Drop every event logged so far (an oplog that rolled over)."""
        self.first = self.end
        self.events.clear()

    async def wait(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter


def position_of(resume: dict[str, Any]) -> int:
    """The position after the event whose token is ``resume``."""
    return int(resume["_data"], 16) + 1


class StandInChangeStream:
    """What ``await client.watch(...)`` returns: async iteration, ``try_next``,
    ``resume_token``, ``close``."""

    def __init__(self, client: Any, pipeline: list[dict[str, Any]], start: int,
                 full_document: str | None, before_change: str | None) -> None:
        for stage in pipeline:
            if set(stage) != {"$match"}:
                raise NotImplementedError(f"stand-in: change stream stage {stage!r}")
        self._client = client
        self._log: ChangeLog = client.changes
        self._filters = [stage["$match"] for stage in pipeline]
        self._position = start
        self._full_document = full_document
        self._before_change = before_change
        self._token: dict[str, str] | None = None
        self.alive = True

    @property
    def resume_token(self) -> dict[str, str] | None:
        """The token of the last event returned (None before the first)."""
        return self._token

    def _shown(self, event: dict[str, Any]) -> dict[str, Any]:
        shown = copy.deepcopy(event)
        if self._before_change not in ("whenAvailable", "required"):
            shown.pop("fullDocumentBeforeChange", None)
        elif self._before_change == "required" and event["operationType"] != "insert" and (
                "fullDocumentBeforeChange" not in event):
            raise OperationFailure("stand-in: no pre-image for this event", code=280)
        if event["operationType"] == "update":
            shown.pop("fullDocument", None)
            if self._full_document == "updateLookup":
                ns, key = event["ns"], event["documentKey"]
                found = self._client._mock[ns["db"]][ns["coll"]].find_one(key)
                shown["fullDocument"] = found
        return shown

    async def try_next(self) -> dict[str, Any] | None:
        """The next matching event, or None if there is none now."""
        if not self.alive:
            raise StopAsyncIteration
        await asyncio.sleep(0)
        if self._client.down:
            raise ServerSelectionTimeoutError("stand-in: no server reachable (go_down)")
        if self._position < self._log.first:
            raise OperationFailure("stand-in: resume point no longer in the oplog", code=286)
        while self._position < self._log.end:
            event = self._log.events[self._position - self._log.first]
            self._position += 1
            if all(filter_applies(flt, event) for flt in self._filters):
                self._token = event["_id"]
                return self._shown(event)
        return None

    def __aiter__(self) -> StandInChangeStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            found = await self.try_next()
            if found is not None:
                return found
            await self._log.wait()

    async def close(self) -> None:
        self.alive = False

    async def __aenter__(self) -> StandInChangeStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def watch(client: Any, pipeline: list[dict[str, Any]] | None = None, *,
                full_document: str | None = None, resume_after: dict[str, Any] | None = None,
                start_after: dict[str, Any] | None = None,
                full_document_before_change: str | None = None,
                **_: Any) -> StandInChangeStream:
    """``AsyncMongoClient.watch`` on the stand-in (see the module docstring)."""
    await client._enter("watch", "", "", (pipeline,), full_document=full_document,
                        resume_after=resume_after, start_after=start_after,
                        full_document_before_change=full_document_before_change)
    if client.standalone:
        raise OperationFailure(
            "The $changeStream stage is only supported on replica sets", code=40573)
    resume = resume_after or start_after
    start = client.changes.end if resume is None else position_of(resume)
    if start < client.changes.first:
        raise OperationFailure("stand-in: resume point no longer in the oplog", code=286)
    return StandInChangeStream(client, list(pipeline or []), start, full_document,
                               full_document_before_change)


__all__ = ["ChangeLog", "StandInChangeStream", "cluster_time", "position_of", "token", "watch"]
