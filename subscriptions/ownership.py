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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

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


class LeaseOwner:
    """Several processes on one SharedStore: leases decide (see the module docstring)."""

    shared = True

    def __init__(self, store: SharedStore, owner: str, ttl: float = 10.0) -> None:
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self.interval = ttl / 3

    async def claim(self, key: str) -> bool:
        return await self.store.acquire_lease(SUBSCRIPTION + key, self.owner, self.ttl)

    async def drop(self, key: str) -> None:
        await self.store.drop_lease(SUBSCRIPTION + key)

    async def round(self, known: Iterable[str], owned: set[str]) -> tuple[set[str], set[str]]:
        await self.store.acquire_lease(PROCESS + self.owner, self.owner, self.ttl)
        held = {name[len(SUBSCRIPTION):]
                for name in await self.store.renew_leases(self.owner, self.ttl)
                if name.startswith(SUBSCRIPTION)}
        lost = owned - held
        keys = sorted(known)
        holders = await self.store.lease_holders(SUBSCRIPTION)
        alive = max(1, len(await self.store.lease_holders(PROCESS)))
        share = math.ceil(len(keys) / alive)
        mine = len(held)
        gained: set[str] = held - owned
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
        await self.store.release_leases(self.owner)


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
            live.owned = False
            if live.periodic is not None:
                live.periodic.cancel()
                live.periodic = None
    for key in gained:
        live = lives.get(key)
        if live is not None:
            live.owned = True
            start_timer(live)
    return [key for key in gained if key in lives]


__all__ = ["PROCESS", "SUBSCRIPTION", "LeaseOwner", "Ownership", "SoleOwner", "apply_round"]
