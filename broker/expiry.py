"""The sweeper of transient entities and attributes (ETSI GS CIM 009 v1.9.1, clause 4.22).

Every store keeps, per entity, when its first part expires (``Store.due_expiries``,
``Store.next_expiry``).  One task per broker process sleeps until that moment,
then commits :func:`ngsi_ld.expiry.expire` (the service's commit path) for each entity due:
an expired entity is deleted, an expired instance or sub-attribute removed, and
the change is published like any write, so subscriptions are told of the
deletions as deletions.

No polling loop: the task waits on an event with the time to the next expiry as
timeout.  A write that makes something expire sooner than the task's next wake-up
wakes it (:meth:`ExpirySweeper.note`, called for every committed write).  Writes
of other processes on a shared store are picked up at the latest after ``idle``
seconds (each process sweeps what it wrote itself, at its time).  The store
write is idempotent: two processes sweeping one entity delete it once.
Reads never show what expired even before it is swept (``broker.service.answers.live``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from types import EllipsisType
from typing import Any

from broker.events import ChangeBus
from broker.tasks import stop
from ngsi_ld.expiry import earliest_expiry, expire
from ngsi_ld.model import Change, Mutation
from ngsi_ld.timeutil import iso_millis
from storage.base import Store

log = logging.getLogger("broker.expiry")

#: writes one entity's removal and publishes it (``Service.commit``)
Commit = Callable[[str, str, Mutation], Awaitable[Change]]

#: seconds the sweeper sleeps at most (another process may have stored a transient entity)
IDLE = 60.0
#: entities expired per store call
BATCH = 500
#: seconds to wait when a sweep found something due but could expire nothing of it
#: (never expected: the store and the sweep read expiresAt with the same function)
STUCK_DELAY = 1.0


def now_millis() -> int:
    """The wall clock in milliseconds since the epoch (expiresAt is wall-clock UTC)."""
    return time.time_ns() // 1_000_000


class ExpirySweeper:
    """Deletes what expired, when it expires (see the module docstring)."""

    def __init__(self, store: Store, commit: ChangeBus | Commit, *,
                 idle: float = IDLE) -> None:
        """``store`` tells what is due; ``commit`` writes each removal and publishes it:
        the service's commit path (subscriptions, commit listeners), or, given a
        change bus, the store's ``modify`` and that bus."""
        self._store = store
        if isinstance(commit, ChangeBus):
            bus = commit

            async def commit(tenant: str, entity_id: str, mutation: Mutation) -> Change:
                change = await store.modify(tenant, entity_id, mutation)
                bus.publish_change(tenant, entity_id, change.before, change.after)
                return change

        self._commit = commit
        self._idle = idle
        self._wake = asyncio.Event()
        #: when the task will look again (ms); +inf while it is sweeping or idle
        self._next = math.inf
        self._task: asyncio.Task[None] | None = None
        #: entities swept so far (for tests and metrics)
        self.swept = 0

    def start(self) -> None:
        """Start the task (at application start-up)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="expiry-sweeper")

    async def close(self) -> None:
        """Stop the task (at shutdown)."""
        task, self._task = self._task, None
        await stop(task)

    def note(self, entity: Mapping[str, Any] | None,
             expires: int | EllipsisType | None = ...) -> None:
        """A write stored ``entity``: wake the task sooner if a part of it expires sooner;
        ``expires``: when that is, if the store told it (``Change.expires``)."""
        at = earliest_expiry(entity) if expires is ... else expires
        if at is not None and at < self._next:
            self._next = at
            self._wake.set()

    async def sweep(self) -> int | None:
        """Expire everything due now; return when the next part expires (ms), or None."""
        now = now_millis()
        stamp = iso_millis(now)
        while True:
            due = await self._store.due_expiries(now, BATCH)
            for tenant, entity_id in due:
                await self._commit(tenant, entity_id, expire(now, stamp))
                self.swept += 1
            if len(due) < BATCH:
                break
        return await self._store.next_expiry()

    async def _run(self) -> None:
        while True:
            # a write noted from here on wakes the wait below at once
            self._next = math.inf
            self._wake.clear()
            started = now_millis()
            try:
                upcoming = await self.sweep()
            except Exception:  # the store is down or a write failed: try again later
                log.exception("sweeping expired entities failed")
                upcoming = None
            delay = self._idle
            if upcoming is not None:
                self._next = min(self._next, upcoming)
                delay = min(delay, max(0.0, (upcoming - now_millis()) / 1000))
                if upcoming <= started:
                    log.warning("an entity due to expire at %s was not expired", upcoming)
                    delay = max(delay, STUCK_DELAY)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
