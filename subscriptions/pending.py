"""Pending notifications kept in the store, so that a restart resumes them (at least once).

Every subscription's queue lives in memory (:class:`~subscriptions.delivery.Channel`);
each notification queued is also written to the store as a record
(collection ``pendingNotifications``, through the same record interface as the
subscriptions themselves: SQLite, MongoDB, memory; the notifications a
subscription queued between two writes share a record), and removed once
handled (delivered, or failed after its retries).

When it is written: **before the write that queued it is answered**.  The
:class:`Journal` notes every queued notification; :meth:`Journal.settled` is a
barrier the entity writes await after their commit (``Service.commit``): the
first waiter starts one write of everything noted so far, and every write
answered in the meantime waits for that same one (group commit: one store
transaction for all the requests of an event-loop tick, which SQLite's writer
thread batches further).  A write that queues no notification does not wait.
Removals are not urgent (a removal lost to a crash means one more delivery, never
one fewer): they ride along with the next write, or the ``PERSIST_INTERVAL`` loop.

At start-up the records are read back and their notifications queued again, in
the order they were first queued, before any new change.  A notification whose
delivery was in progress, or delivered just before the crash, is sent again:
delivery is at least once.  Not written: changes that throttling holds back
(5.2.12, sent when the period ends) and those queued by a timer or the expiry
sweeper until the next write or tick (no request waits for them).

The journal knows nothing of what a notification holds: each kind of
subscription gives its :class:`Codec` (entity subscriptions: :data:`JOBS`, their
change events and entity states; registration subscriptions,
``subscriptions.registrations``: their trigger reason and registrations) and
its own record collection, and gets the same guarantee through this code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ngsi_ld.changes import ChangeEvent
from subscriptions.live import Job
from subscriptions.repository import Repository

__all__ = ["COLLECTION", "JOBS", "PERSIST_INTERVAL", "Codec", "Journal", "Journaled", "Stored",
           "decode_job", "encode_job", "load", "record_id", "resume"]

log = logging.getLogger("broker.subscriptions")

#: the record collection of pending notifications (one record per notification)
COLLECTION = "pendingNotifications"
#: seconds between two writes of what no request waited for (removals, timers)
PERSIST_INTERVAL = 1.0


class Journaled(Protocol):
    """A queued notification as the journal sees it: the records that keep it."""

    records: list[str]


J = TypeVar("J", bound=Journaled)

#: (tenant, subscription id, [(record id, job)] in the order they were queued)
Stored = tuple[str, str, list[tuple[str, J]]]


@dataclass(frozen=True)
class Codec(Generic[J]):
    """How one kind of queued notification is written as JSON and read back."""

    encode: Callable[[J], dict[str, Any]]
    decode: Callable[[dict[str, Any]], J]


def encode_job(job: Job) -> dict[str, Any]:
    """A queued notification as a JSON document."""
    if job.events is not None:
        return {"events": [
            {"tenant": e.tenant, "id": e.entity_id, "before": e.before, "after": e.after,
             "trigger": e.trigger, "attributes": e.attributes}
            for e in job.events]}
    return {"entities": list(job.entities or ())}


def decode_job(doc: dict[str, Any]) -> Job:
    """The queued notification a document of :func:`encode_job` describes."""
    if "events" in doc:
        return Job(events=[
            ChangeEvent(e["tenant"], e["id"], e["before"], e["after"], e["trigger"],
                        dict(e["attributes"]))
            for e in doc["events"]])
    return Job(entities=list(doc["entities"]))


#: the codec of entity subscriptions' notifications
JOBS: Codec[Job] = Codec(encode_job, decode_job)


def _record(sub_id: str, seq: int, jobs: list[J], codec: Codec[J]) -> dict[str, Any]:
    return {"id": record_id(sub_id, seq), "subscription": sub_id, "seq": seq,
            "jobs": [codec.encode(job) for job in jobs]}


def record_id(sub_id: str, seq: int) -> str:
    """The id of the record of ``sub_id``'s notifications queued in batch ``seq``."""
    return f"{sub_id}#{seq:020d}"


async def load(repository: Repository, codec: Codec[J]) -> list[Stored[J]]:
    """Every stored notification, per subscription, in the order they were queued;
    unreadable records are dropped.  Records of the earlier form (one per
    subscription, no ``subscription`` member) are read as the oldest of theirs."""
    found: dict[tuple[str, str], list[tuple[int, int, str, J]]] = {}
    for tenant, doc in await repository.all():
        try:
            jobs = [codec.decode(j) for j in doc["jobs"]]
            sub_id = str(doc.get("subscription", doc["id"]))
            seq = int(doc["seq"]) if "subscription" in doc else -1
            found.setdefault((tenant, sub_id), []).extend(
                (seq, n, str(doc["id"]), job) for n, job in enumerate(jobs))
        except Exception:  # whatever a damaged record makes the codec raise
            log.warning("pending notifications %s (tenant %r) unreadable: dropped",
                        doc.get("id"), tenant)
            await repository.delete(tenant, str(doc.get("id")))
    stored: list[Stored[J]] = []
    for (tenant, sub_id), entries in sorted(found.items()):
        entries.sort(key=lambda entry: entry[:2])
        stored.append((tenant, sub_id, [(rid, job) for _, _, rid, job in entries]))
    return stored


class Journal(Generic[J]):
    """The pending notifications' records: noted when queued, written before the write
    that queued them is answered (:meth:`settled`), removed once handled (:meth:`done`).

    The notifications one subscription queued between two writes share one record
    (batch ``seq``), so that a burst of concurrent requests costs a record per
    subscription, not one per notification; the record goes once every notification
    in it was handled.
    """

    def __init__(self, repository: Repository, codec: Codec[J]) -> None:
        self.repository = repository
        self.codec = codec
        # batch numbers order the records; a nanosecond clock start keeps them
        # increasing across restarts
        self._batch = time.time_ns()
        #: (tenant, subscription id) -> the jobs of the current batch, not written yet
        self._unsaved: dict[tuple[str, str], list[J]] = {}
        #: (tenant, record id) -> its notifications not handled yet
        self._open: dict[tuple[str, str], int] = {}
        self._written: set[tuple[str, str]] = set()
        self._removable: set[tuple[str, str]] = set()
        #: notifications noted so far, and how many of them are written
        self._noted = 0
        self._saved = 0
        self._saving: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def note(self, tenant: str, sub_id: str, job: J) -> None:
        """A notification was queued: it goes into its subscription's record of the batch."""
        rid = record_id(sub_id, self._batch)
        job.records.append(rid)
        self._unsaved.setdefault((tenant, sub_id), []).append(job)
        self._open[(tenant, rid)] = self._open.get((tenant, rid), 0) + 1
        self._noted += 1

    def done(self, tenant: str, records: Iterable[str]) -> None:
        """A notification stored in ``records`` (one per notification merged into it)
        was handled, or dropped: a record none of whose notifications is left goes."""
        for rid in records:
            key = (tenant, rid)
            left = self._open.get(key, 0) - 1
            if left > 0:
                self._open[key] = left
                continue
            self._open.pop(key, None)
            if key in self._written:
                self._written.discard(key)
                self._removable.add(key)

    def adopt(self, tenant: str, stored: Iterable[tuple[str, J]]) -> None:
        """Jobs read back from the store keep their records (and the batches move past them)."""
        for rid, job in stored:
            job.records.append(rid)
            key = (tenant, rid)
            self._open[key] = self._open.get(key, 0) + 1
            self._written.add(key)
            _, _, seq = rid.rpartition("#")
            if seq.isdigit():
                self._batch = max(self._batch, int(seq) + 1)

    @property
    def idle(self) -> bool:
        """Nothing to write: every noted notification is written, nothing to remove."""
        return self._saved >= self._noted and not self._removable

    @property
    def unsettled(self) -> bool:
        """Notifications noted and not written yet: :meth:`settled` waits for them."""
        return self._saved < self._noted

    async def settled(self) -> None:
        """Wait until every notification noted so far is written.

        One write serves every waiter of the moment; a waiter whose notifications
        were noted after a write began waits for the next one.
        """
        target = self._noted
        while self._saved < target:
            if self._saving is None or self._saving.done():
                self._saving = asyncio.get_running_loop().create_task(self.flush())
            await asyncio.shield(self._saving)

    async def flush(self) -> None:
        """Write what was noted and remove what was handled (errors are logged: the
        writes they concern are committed already and are answered)."""
        async with self._lock:
            noted, batch, unsaved = self._noted, self._batch, self._unsaved
            self._batch, self._unsaved = batch + 1, {}
            removable, self._removable = self._removable, set()
            puts = []
            for (tenant, sub_id), jobs in unsaved.items():
                key = (tenant, record_id(sub_id, batch))
                if key in self._open:  # else every one was handled already
                    self._written.add(key)
                    puts.append(self.repository.put(tenant, _record(sub_id, batch, jobs,
                                                                   self.codec)))
            removals = [self.repository.delete(tenant, rid) for tenant, rid in removable]
            try:
                await asyncio.gather(*puts, *removals)
            except Exception:
                log.exception("pending notifications could not be written")
            finally:
                self._saved = max(self._saved, noted)

    async def keep_written(self) -> None:
        """Every ``PERSIST_INTERVAL`` seconds, write what no request waited for (removals,
        notifications a timer queued); runs until cancelled."""
        while True:
            await asyncio.sleep(PERSIST_INTERVAL)
            if not self.idle:
                await self.flush()


async def resume(journal: Journal[J], stored: list[Stored[J]],
                 offer: dict[tuple[str, str], Any]) -> list[tuple[str, str, int]]:
    """Hand the stored notifications back to their subscriptions' queues.

    ``offer`` maps (tenant, subscription id) to the channel's ``offer``; records of
    a subscription not there (deleted meanwhile) are removed.  Returns (tenant,
    subscription id, count) of what was resumed.
    """
    resumed: list[tuple[str, str, int]] = []
    for tenant, sub_id, entries in stored:
        put = offer.get((tenant, sub_id))
        journal.adopt(tenant, entries)
        if put is None:
            journal.done(tenant, [rid for rid, _ in entries])
            continue
        for _, job in entries:
            put(job)
        resumed.append((tenant, sub_id, len(entries)))
    return resumed
