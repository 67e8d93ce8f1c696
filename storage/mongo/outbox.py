"""History recorded with the entity write it describes, on MongoDB (issue 15, temporal.md 3.1).

On a replica set or a sharded cluster (transactions), an entity write and what
it adds to the history commit together:

1. ONE transaction holds the conditional entity write(s) and the insertion of
   the write's :class:`~ngsi_ld.temporal.History` into ``temporal_outbox``
   (a plain collection: a time-series collection cannot be written in a
   transaction): ``{_id, e: entity id, h: the history as JSON text, at}``;
2. after the commit the history is written where readers find it
   (``MongoHistory.record``: the instances, time-series or not, and the entity's
   temporal record), then its outbox document is deleted.

So there is never history without its entity change (a write that loses its
race or fails aborts with its outbox document), and never an entity change
without its history: a process that dies between 1 and 2 leaves the outbox
document, and :meth:`HistoryOutbox.recover` (at start-up, for outbox documents
older than a minute, i.e. not in flight in another process) writes it,
skipping instances already written.  Readers may see the history of a write a
few milliseconds after the write itself.

On a standalone server (no transactions) the history is written right after the
conditional write, as before: a crash in between loses that write's history.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson

from ngsi_ld.temporal import EntityRecord, History, Instance

from .support import faults, log

OUTBOX = "temporal_outbox"
#: seconds after which an outbox document is taken as left by a process that died
STALE = 60.0

T = TypeVar("T")
Body = Callable[[Any], Awaitable[T]]


class Abort(Exception):
    """Raised by a write body when its writes cannot all be done (an id taken, a batch
    write error): the transaction is aborted, and the caller redoes or reports.  It is
    not a driver error, so that it passes the fault translation unchanged."""


def encode_history(history: History) -> str:
    """A History as JSON text (values may hold keys MongoDB refuses)."""
    return orjson.dumps(dataclasses.asdict(history)).decode()


def decode_history(text: str) -> History:
    """The History :func:`encode_history` wrote."""
    raw = orjson.loads(text)
    entity = raw["entity"]
    record = EntityRecord(**{**entity, "types": tuple(entity["types"])})
    return History(record, tuple(Instance(**inst) for inst in raw["instances"]))


class HistoryOutbox:
    """Runs entity writes with their history (see the module docstring)."""

    def __init__(self, client: Callable[[], Any], collection: Callable[[str, str], Any],
                 record: Callable[..., Awaitable[None]]) -> None:
        self._client = client
        self._coll = collection
        self._record = record
        self._transactions: bool | None = None

    async def transactional(self) -> bool:
        """True on a replica set or a sharded cluster (asked once)."""
        if self._transactions is None:
            with faults("server kind"):
                hello = await self._client().admin.command("hello")
            self._transactions = "setName" in hello or hello.get("msg") == "isdbgrid"
        return self._transactions

    async def run(self, tenant: str, body: Body[T],
                  histories: Callable[[T], Sequence[History]], *, recording: bool) -> T:
        """``await body(session)`` (its writes pass ``session=``), with the histories
        ``histories(result)`` recorded in the same transaction where there are transactions,
        right after it otherwise.  Without ``recording`` (nothing to record), no
        transaction: ``body(None)``."""
        if not recording:
            return await body(None)
        if not await self.transactional():
            result = await body(None)
            for history in histories(result):
                await self._record(tenant, history)
            return result
        outbox = self._coll(tenant, OUTBOX)
        pending: list[tuple[str, History]] = []

        async def transaction(session: Any) -> T:
            pending.clear()
            result = await body(session)
            pending.extend((uuid.uuid4().hex, h) for h in histories(result))
            if pending:
                now = datetime.now(UTC)
                await outbox.insert_many(
                    [{"_id": key, "e": h.entity.entity_id, "h": encode_history(h), "at": now}
                     for key, h in pending], session=session)
            return result

        with faults("entity write"):
            async with self._client().start_session() as session:
                result = await session.with_transaction(transaction)
        if pending:
            for _, history in pending:
                await self._record(tenant, history)
            with faults("history write"):
                await outbox.delete_many({"_id": {"$in": [key for key, _ in pending]}})
        return result

    async def recover(self, tenant: str) -> int:
        """Record the histories left in the outbox by a process that died between its
        commit and their recording; how many."""
        if not await self.transactional():
            return 0
        outbox = self._coll(tenant, OUTBOX)
        stale = datetime.now(UTC) - timedelta(seconds=STALE)
        with faults("history recovery"):
            docs = await outbox.find({"at": {"$lt": stale}}, sort=[("at", 1)]).to_list()
        for doc in docs:
            await self._record(tenant, decode_history(doc["h"]), recovering=True)
            with faults("history recovery"):
                await outbox.delete_one({"_id": doc["_id"]})
        if docs:
            log.warning("recorded the history of %d writes a stopped process left in %s",
                        len(docs), OUTBOX)
        return len(docs)


__all__ = ["OUTBOX", "Abort", "HistoryOutbox", "decode_history", "encode_history"]
