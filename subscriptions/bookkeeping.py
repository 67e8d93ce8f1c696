"""The delivery record of a set of subscriptions: one send, its outcome, and its write-back.

Entity subscriptions (``subscriptions.manager``) and registration subscriptions
(``subscriptions.registrations``) keep their notification members the same way
(clause 5.2.12 ``NotificationParams``, 5.8.6, 5.11.7); this module is that way,
written once:

* :meth:`Ledger.deliver` sends one rendered notification and records its outcome in the
  subscription's document (``subscriptions.state``): dropped during
  ``endpoint.cooldown`` (5.2.15), ``timesSent`` and ``lastNotification`` as it
  is sent, then ``ok``/``lastSuccess`` or ``failed``/``lastFailure``.
* the :class:`Ledger` also counts metrics, remembers which documents changed and writes
  them back to their repository every ``FLUSH_INTERVAL`` seconds and at
  shutdown, and knows which deliveries are in flight.
* with several processes, a write-back is fenced by the subscription's lease
  (``fences``, subscriptions.ownership "Fencing"): refused, it is dropped and
  ``on_stale`` is told, so that the process stops delivering the subscription.

Why deliveries in flight are tracked: a subscriber that receives a notification
and retrieves the subscription at once (ETSI 046_05, 047_05) may ask before
the broker has read the subscriber's own answer, so ``status``/``lastSuccess``
would not yet say what the subscriber already knows.  A retrieve by id waits
for that subscription's deliveries in flight, at most ``SETTLE_WAIT`` seconds
(a hung endpoint costs a retrieve that long, never more).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ngsi_ld.timeutil import now_iso
from subscriptions import state
from subscriptions.delivery import Delivery, DeliveryError
from subscriptions.live import sub_key
from subscriptions.ports import Counters
from subscriptions.repository import Repository

if TYPE_CHECKING:
    from storage.sharing import Fence

log = logging.getLogger("broker.subscriptions")

#: seconds between write-backs of delivery counters
FLUSH_INTERVAL = 5.0
#: the longest a retrieve waits for the subscription's deliveries in flight
SETTLE_WAIT = 1.0


class Notified(Protocol):
    """A subscription as its manager holds it, as far as delivery is concerned."""

    tenant: str
    doc: dict[str, Any]
    cooldown_until: float

    @property
    def id(self) -> str: ...


class Ledger:
    """Metrics, write-back and deliveries in flight of one manager's subscriptions."""

    def __init__(self, repository: Repository, metrics: Counters | None, what: str,
                 lives: Callable[[], Mapping[str, Notified]], *,
                 fences: Callable[[str], Fence | None] | None = None,
                 on_stale: Callable[[str], None] | None = None) -> None:
        self.repository = repository
        #: the lease guarding the write-back of a subscription, by key (None: unguarded)
        self.fences = fences
        #: told the key of a subscription whose fenced write-back was refused
        self.on_stale = on_stale
        self.metrics = metrics
        #: how the log names these subscriptions
        self.what = what
        #: the manager's subscriptions by key, as they are now
        self.lives = lives
        self._dirty: set[str] = set()
        self._in_flight: dict[str, int] = {}
        self._settled: dict[str, asyncio.Event] = {}
        self._flusher: asyncio.Task[None] | None = None

    # -- metrics and changed documents ---------------------------------------------------
    def count(self, name: str) -> None:
        """Add one to the metric ``name`` (``notifications_sent``...)."""
        if self.metrics is not None:
            self.metrics.incr(name)

    def touch(self, live: Notified) -> None:
        """``live``'s document changed: write it back at the next flush."""
        self._dirty.add(sub_key(live.tenant, live.id))

    def forget(self, tenant: str, sub_id: str) -> None:
        """The subscription is gone: nothing of it is written back."""
        self._dirty.discard(sub_key(tenant, sub_id))

    def drop(self, live: Notified, how_many: int) -> None:
        """``how_many`` notifications of ``live`` were dropped before any attempt."""
        log.warning("%s %s: queue full, %d notification(s) dropped", self.what, live.id,
                    how_many)
        self.count("notifications_dropped")
        state.record_failure(live.doc, now_iso(), attempted=False)
        self.touch(live)

    # -- one delivery ---------------------------------------------------------------------
    def cooling_down(self, live: Notified, now: str) -> bool:
        """True (and the notification counted as dropped) inside ``endpoint.cooldown``."""
        if time.monotonic() < live.cooldown_until:
            self.count("notifications_dropped")
            state.record_failure(live.doc, now, attempted=False)
            self.touch(live)
            return True
        return False

    async def deliver(self, live: Notified, delivery: Delivery, headers: dict[str, str],
                      body: dict[str, Any], now: str) -> None:
        """Send ``body`` to ``live``'s endpoint and record the outcome (5.8.6, 5.11.7)."""
        endpoint = live.doc["notification"]["endpoint"]
        key = sub_key(live.tenant, live.id)
        self.touch(live)
        state.record_attempt(live.doc, now)
        self._begin(key)
        try:
            await delivery.send(endpoint, headers, body)
        except DeliveryError as exc:
            log.warning("%s %s: notification failed: %s", self.what, live.id, exc)
            self.count("notifications_failed")
            state.record_failure(live.doc, now if delivery.retries == 0 else now_iso())
            if "cooldown" in endpoint:
                live.cooldown_until = time.monotonic() + endpoint["cooldown"] / 1000
            self._end(key)
            return
        except BaseException:
            self._end(key)
            raise
        self.count("notifications_sent")
        state.record_success(live.doc, now)
        self._end(key)

    # -- deliveries in flight ------------------------------------------------------------
    async def settled(self, live: Notified) -> None:
        """Wait (at most ``SETTLE_WAIT`` s) until no delivery of ``live`` is in flight."""
        event = self._settled.get(sub_key(live.tenant, live.id))
        if event is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), SETTLE_WAIT)

    def _begin(self, key: str) -> None:
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        if key not in self._settled:
            self._settled[key] = asyncio.Event()

    def _end(self, key: str) -> None:
        left = self._in_flight[key] - 1
        if left:
            self._in_flight[key] = left
            return
        del self._in_flight[key]
        self._settled.pop(key).set()

    # -- write-back ----------------------------------------------------------------------
    def start(self) -> None:
        """Start writing changed documents back every ``FLUSH_INTERVAL`` seconds."""
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def stop(self) -> None:
        """Stop the periodic write-back (call :meth:`flush` once more afterwards)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.flush()
            except Exception:
                log.exception("%s counters could not be written back", self.what)

    async def flush(self, stopped: Iterable[Notified] = ()) -> None:
        """Write back the changed documents (``stopped``: subscriptions just stopped)."""
        dirty, self._dirty = self._dirty, set()
        known = dict(self.lives())
        known.update({sub_key(live.tenant, live.id): live for live in stopped})
        for key in sorted(dirty):
            live = known.get(key)
            if live is None:
                continue
            # a snapshot: deliveries go on updating the live document meanwhile
            snapshot = orjson.loads(orjson.dumps(live.doc))
            lease = None if self.fences is None else self.fences(key)
            if lease is None:
                await self.repository.put(live.tenant, snapshot)
            elif not await self.repository.put_fenced(live.tenant, snapshot, lease):
                log.warning("%s %s: its lease changed hands (epoch %d no longer ours): "
                            "counters not written, delivery stopped here", self.what,
                            live.id, lease.epoch)
                if self.on_stale is not None:
                    self.on_stale(key)


__all__ = ["FLUSH_INTERVAL", "SETTLE_WAIT", "Ledger", "Notified"]
