"""Pending notifications kept in the store, so that a restart resumes them (at least once).

Every subscription's queue lives in memory (:class:`~subscriptions.delivery.Channel`);
what is still queued, and the notification being sent, is written to the store
as one record per subscription (collection ``pendingNotifications``, through the
same record interface as the subscriptions themselves: SQLite, MongoDB, memory):

* by the manager's write-behind loop every ``PERSIST_INTERVAL`` seconds, for the
  queues that changed since (a subscriber that keeps up never has a queue at a
  tick, so the write path pays nothing: only a backlog is written);
* at shutdown, every queue, including the notification in flight;
* the record is removed once its queue has drained.

At start-up the records are read back and their notifications queued again,
before any new change, in their order.  A notification whose delivery was in
progress, or that was delivered after the last write, is sent again: delivery
is at least once.  After a crash (``kill -9``) the notifications queued in the
last ``PERSIST_INTERVAL`` seconds may be lost; those older were written.
"""

from __future__ import annotations

import logging
from typing import Any

from ngsi_ld.changes import ChangeEvent
from subscriptions.live import Job, Live, sub_key
from subscriptions.repository import Repository

__all__ = ["COLLECTION", "PERSIST_INTERVAL", "decode_job", "encode_job", "load", "persist",
           "resume", "save"]

log = logging.getLogger("broker.subscriptions")

#: the record collection of pending notifications (one record per subscription)
COLLECTION = "pendingNotifications"
#: seconds between two writes of the queues that changed
PERSIST_INTERVAL = 1.0


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


async def save(repository: Repository, tenant: str, sub_id: str, jobs: list[Job]) -> None:
    """Write a subscription's pending notifications (none: remove its record)."""
    if jobs:
        await repository.put(tenant, {"id": sub_id, "jobs": [encode_job(j) for j in jobs]})
    else:
        await repository.delete(tenant, sub_id)


async def load(repository: Repository) -> list[tuple[str, str, list[Job]]]:
    """(tenant, subscription id, jobs) of every record; unreadable records are dropped."""
    found: list[tuple[str, str, list[Job]]] = []
    for tenant, doc in await repository.all():
        try:
            found.append((tenant, str(doc["id"]), [decode_job(j) for j in doc["jobs"]]))
        except (KeyError, TypeError, ValueError):
            log.warning("pending notifications of %s (tenant %r) unreadable: dropped",
                        doc.get("id"), tenant)
            await repository.delete(tenant, str(doc.get("id")))
    return found


async def resume(repository: Repository, lives: dict[str, Live]) -> None:
    """Queue the stored pending notifications of each subscription again, in order."""
    for tenant, sub_id, jobs in await load(repository):
        live = lives.get(sub_key(tenant, sub_id))
        if live is None:  # deleted meanwhile
            await repository.delete(tenant, sub_id)
            continue
        live.channel.persisted = True
        for job in jobs:
            live.channel.offer(job)
        log.info("subscription %s: %d pending notification(s) resumed", sub_id, len(jobs))


async def persist(repository: Repository, lives: list[Live], *, everything: bool = False) -> None:
    """Write the queues that changed (``everything``: all of them) of the owned subscriptions."""
    for live in lives:
        channel = live.channel
        if not (channel.changed or everything) or not live.owned:
            continue
        jobs = channel.snapshot()
        if not jobs and not channel.persisted:
            continue  # it kept up: nothing was ever written, nothing to write
        await save(repository, live.tenant, live.id, jobs)
        channel.persisted = bool(jobs)
