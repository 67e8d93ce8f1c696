"""Which broker process delivers each subscription.

Rules (docs/scaling.md):

* One process alone (:class:`SoleOwner`) owns every subscription; no I/O.
* Several processes on one shared store (:class:`LeaseOwner`): a subscription
  is delivered by the holder of the lease ``subscription:<tenant>\\0<id>``, and
  by no other process.  Every process still knows every subscription (to
  answer the API); only the owner matches changes against it, runs its
  ``timeInterval`` timer and writes its delivery counters back.
* The process that creates a subscription claims it at once.
* Every ``ttl / 3`` seconds each process runs a round: it renews its leases
  (also its ``process:<id>`` lease, which counts it as alive); a subscription
  whose lease it failed to renew, it stops delivering; then it claims
  subscriptions nobody holds, while it holds fewer than its fair share
  (subscriptions / live processes, rounded up).  Held leases are not moved to
  balance the load.
* A deleted subscription's lease is dropped.  A process that shuts down
  releases its leases, so the others take them at their next round; one that
  dies loses them when they expire (``ttl``).

Fencing (the delivery counters):

* A process learns the lease's ``epoch`` when it gains it (every hand-over
  increments it), and writes the delivery counters back ONLY while it still
  holds the lease with that epoch (:meth:`LeaseOwner.fence`, the store's
  ``put_fenced``: a conditional UPDATE on SQLite, a transaction with an update
  of the lease filtered on its epoch on MongoDB).  A process paused or slow past
  the TTL, whose lease another process took meanwhile, has its write refused:
  the write is dropped (the new owner's counters stay) and it stops delivering
  that subscription at once (:func:`disown`): no queued notification of it is
  sent any more (the new owner resumes the stored ones).  If the lease is still
  its own under a new epoch, the next round gives it back with that epoch.

Marks (a subscription is notified of the changes committed after its creation,
clause 5.11):

* The process that creates a subscription stores in it ``_feedMark``, the
  store's mark at creation (``feed_mark``: the feed sequence on SQLite, the
  cluster time on MongoDB), before writing it.  Every change another process
  made reaches this one through the feed with the mark of its commit
  (``ChangeEvent.mark``), and a subscription ignores the changes whose mark is at
  or below its own: those committed before it existed, which a process reads
  after it learnt of the subscription (its own creation, a reload from the
  store, a start-up) when its feed lags.  A change committed while the creation
  was in progress (concurrent with it) may notify or not.  Local writes carry
  no mark: a process publishes them as it commits them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from storage.sharing import Fence
from subscriptions.live import Live

if TYPE_CHECKING:
    from storage.sharing import SharedStore

log = logging.getLogger("broker.subscriptions")

SUBSCRIPTION = "subscription:"
PROCESS = "process:"


class Ownership(Protocol):
    """How the subscription manager learns what it delivers."""

    shared: bool
    interval: float

    async def claim(self, key: str) -> bool: ...

    async def drop(self, key: str) -> None: ...

    async def round(self, known: Iterable[str], owned: set[str]) -> tuple[set[str], set[str]]:
        """Renew, then claim: (keys gained, keys lost)."""
        ...

    async def close(self) -> None: ...

    def fence(self, key: str) -> Fence | None:
        """The lease on ``key`` as this process was granted it (None: writes need none)."""
        ...

    def forget(self, key: str) -> None:
        """A write fenced by ``key``'s lease was refused: the lease is no longer ours."""
        ...

    async def mark(self) -> int | None:
        """The store's mark now, stored in a new subscription (None: one process)."""
        ...


class SoleOwner:
    """One broker process: it owns every subscription."""

    shared = False
    interval = 0.0

    async def claim(self, key: str) -> bool:
        return True

    async def drop(self, key: str) -> None:
        return None

    async def round(self, known: Iterable[str], owned: set[str]) -> tuple[set[str], set[str]]:
        return set(known) - owned, set()

    async def close(self) -> None:
        return None

    def fence(self, key: str) -> Fence | None:
        return None

    def forget(self, key: str) -> None:
        return None

    async def mark(self) -> int | None:
        return None


class LeaseOwner:
    """Several processes on one SharedStore: leases decide (see the module docstring)."""

    shared = True

    def __init__(self, store: SharedStore, owner: str, ttl: float = 10.0) -> None:
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self.interval = ttl / 3
        #: the epoch of every subscription lease held, as it was granted
        self.epochs: dict[str, int] = {}

    async def claim(self, key: str) -> bool:
        name = SUBSCRIPTION + key
        if not await self.store.acquire_lease(name, self.owner, self.ttl):
            return False
        return await self._learn_epoch(key)

    async def _learn_epoch(self, key: str) -> bool:
        epoch = await self.store.lease_epoch(SUBSCRIPTION + key, self.owner)
        if epoch is None:  # lost again already
            self.epochs.pop(key, None)
            return False
        self.epochs[key] = epoch
        return True

    async def drop(self, key: str) -> None:
        self.epochs.pop(key, None)
        await self.store.drop_lease(SUBSCRIPTION + key)

    def fence(self, key: str) -> Fence | None:
        # epoch 0 is never granted: a write for a lease not (or no longer) known is refused
        return Fence(SUBSCRIPTION + key, self.owner, self.epochs.get(key, 0))

    def forget(self, key: str) -> None:
        self.epochs.pop(key, None)

    async def mark(self) -> int | None:
        return await self.store.feed_mark() or None

    async def round(self, known: Iterable[str], owned: set[str]) -> tuple[set[str], set[str]]:
        await self.store.acquire_lease(PROCESS + self.owner, self.owner, self.ttl)
        held = {name[len(SUBSCRIPTION):]
                for name in await self.store.renew_leases(self.owner, self.ttl)
                if name.startswith(SUBSCRIPTION)}
        lost = owned - held
        for key in lost:
            self.epochs.pop(key, None)
        keys = sorted(known)
        holders = await self.store.lease_holders(SUBSCRIPTION)
        alive = max(1, len(await self.store.lease_holders(PROCESS)))
        share = math.ceil(len(keys) / alive)
        mine = len(held)
        gained: set[str] = {key for key in held - owned
                            if key in self.epochs or await self._learn_epoch(key)}
        for key in keys:
            if mine >= share:
                break
            if SUBSCRIPTION + key in holders:
                continue
            if await self.claim(key):
                gained.add(key)
                mine += 1
        return gained, lost

    async def close(self) -> None:
        self.epochs.clear()
        await self.store.release_leases(self.owner)


def disown(live: Live) -> None:
    """This process no longer delivers ``live``: no matching, no timer, no sending."""
    live.owned = False
    if live.periodic is not None:
        live.periodic.cancel()
        live.periodic = None


async def apply_round(ownership: Ownership, lives: dict[str, Live],
                      start_timer: Callable[[Live], None]) -> list[str]:
    """Run one lease round and mark the subscriptions gained and lost (timers follow);
    returns the keys of those gained."""
    owned = {key for key, live in lives.items() if live.owned}
    gained, lost = await ownership.round(list(lives), owned)
    for key in lost:
        live = lives.get(key)
        if live is not None:
            log.warning("subscription %s: lease lost, another process delivers it", live.id)
            disown(live)
    for key in gained:
        live = lives.get(key)
        if live is not None:
            live.owned = True
            start_timer(live)
    return [key for key in gained if key in lives]


__all__ = ["PROCESS", "SUBSCRIPTION", "LeaseOwner", "Ownership", "SoleOwner", "apply_round",
           "disown"]
