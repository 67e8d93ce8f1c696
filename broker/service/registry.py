"""The Context Source Registrations of every tenant: in memory, written through to the store.

This module is the border between the registrations (5.9, 5.10, 5.11: this
package and ``subscriptions.registrations``) and the distributed operations
(4.3.6: ``broker.federation``, which implements ``broker.service.ports.Sources``).
Distributed operations use the :class:`Registry` Protocol only:

- :meth:`Registry.of` — the tenant's registrations that apply now (not
  expired), sorted by id: what ``ngsi_ld.federation.candidates`` /
  ``plan_reads`` / ``plan_write`` take.  Synchronous: the registrations are in
  memory, and planning is on the hot path;
- :meth:`Registry.matching` — the same filtered by a
  :class:`~ngsi_ld.federation.RegistrationQuery` (5.10.2);
- :attr:`Registry.empty` — no registration in any tenant; :meth:`Registry.holds`
  — the tenant has one (``Sources.serves`` follows it, per tenant);
- :meth:`Registry.record_delivery` — a distributed operation used a
  registration (Table 5.2.9-2 status members: ``timesSent``, ``status``...);
  written back to the store at most every :data:`FLUSH_INTERVAL` seconds, never
  once per forwarded request;
- :meth:`Registry.on_change` — told of every registration created, updated or
  deleted (expiry included), after it was stored.

:class:`Registrations` is the implementation: the store's records of collection
``csourceRegistrations`` (both backends keep records), loaded at start, each
read back through ``registration_from_record`` (a damaged record is logged and
skipped, never used).  Processes sharing a store catch up through
:meth:`Registrations.reload`, which the cluster node calls on a record change.
An expired registration (5.9.2.4 ``expiresAt``) is never returned and is
deleted by a timer set to the next expiry, so registration subscriptions hear
of it going.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

from broker.tasks import stop
from ngsi_ld.federation import (
    Registration,
    RegistrationQuery,
    registration_from_record,
    registration_record,
)
from ngsi_ld.timeutil import format_datetime, parse_datetime
from storage.base import Store

__all__ = [
    "COLLECTION", "FLUSH_INTERVAL", "RegistrationListener", "Registrations", "Registry",
]

log = logging.getLogger("broker.registrations")

#: the store's record collection of registrations (per tenant)
COLLECTION = "csourceRegistrations"
#: seconds between write-backs of the status members distributed operations change
FLUSH_INTERVAL = 5.0

#: (tenant, before, after) of a stored registration change: created (before None),
#: updated, deleted or expired (after None); must not block
RegistrationListener = Callable[[str, Registration | None, Registration | None], None]


def _now() -> datetime:
    return datetime.now(UTC)


class Registry(Protocol):
    """The registrations as distributed operations read them (see the module docstring)."""

    @property
    def empty(self) -> bool:
        """True when no tenant has a registration."""
        ...

    def holds(self, tenant: str) -> bool:
        """True when ``tenant`` has a registration (``Sources.serves`` follows it)."""
        ...

    def of(self, tenant: str, now: datetime | None = None) -> tuple[Registration, ...]:
        """The tenant's registrations that apply at ``now`` (default: now), sorted by id."""
        ...

    def matching(self, tenant: str, query: RegistrationQuery,
                 now: datetime | None = None) -> list[Registration]:
        """The tenant's registrations ``query`` selects at ``now``, sorted by id."""
        ...

    def record_delivery(self, tenant: str, registration_id: str, ok: bool) -> None:
        """A distributed operation sent to the registration's source succeeded or failed."""
        ...

    def on_change(self, listener: RegistrationListener, *,
                  remote: bool = True) -> Callable[[], None]:
        """Tell ``listener`` of every stored change from now on; returns the undo.

        ``remote`` False: only of the changes this process made (another process
        sharing the store tells its own listeners of its own)."""
        ...


class Registrations:
    """Every tenant's registrations, kept in memory over the store's records."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_tenant: dict[str, dict[str, Registration]] = {}
        #: tenant -> (its registrations sorted by id, whether one has expiresAt)
        self._ordered: dict[str, tuple[tuple[Registration, ...], bool]] = {}
        self._listeners: list[tuple[RegistrationListener, bool]] = []
        self._dirty: set[tuple[str, str]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._sweeping: asyncio.Task[int] | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def load(self) -> None:
        """Read every stored registration (at start, before requests are served)."""
        self._by_tenant.clear()
        self._ordered.clear()
        for tenant, record in await self.store.all_records(COLLECTION):
            registration = _read(tenant, record)
            if registration is not None:
                self._by_tenant.setdefault(tenant, {})[registration.id] = registration
                self._ordered.pop(tenant, None)
        count = sum(len(regs) for regs in self._by_tenant.values())
        if count:
            log.info("%d context source registrations loaded", count)

    def start(self) -> None:
        """Start the expiry timer and the write-back of status members."""
        loop = asyncio.get_running_loop()
        self._flusher = loop.create_task(self._flush_loop())
        self._schedule()

    async def close(self) -> None:
        """Stop the timers and write back the status members."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in (self._flusher, self._sweeping):
            await stop(task)
        await self.flush()

    # -- reads (the Registry Protocol) ---------------------------------------------------
    @property
    def empty(self) -> bool:
        return not any(self._by_tenant.values())

    def holds(self, tenant: str) -> bool:
        return bool(self._by_tenant.get(tenant))

    def of(self, tenant: str, now: datetime | None = None) -> tuple[Registration, ...]:
        # on the path of every request once sources are enabled: the sorted tuple is
        # kept until the tenant's registrations change, and the clock is read only
        # when one of them can expire
        cached = self._ordered.get(tenant)
        if cached is None:
            regs = self._by_tenant.get(tenant) or {}
            ordered = tuple(regs[key] for key in sorted(regs))
            cached = self._ordered[tenant] = (
                ordered, any(reg.expires_at is not None for reg in ordered))
        ordered, expiring = cached
        if not expiring:
            return ordered
        at = now or _now()
        return tuple(reg for reg in ordered if not reg.expired(at))

    def matching(self, tenant: str, query: RegistrationQuery,
                 now: datetime | None = None) -> list[Registration]:
        at = now or _now()
        return [reg for reg in self.of(tenant, at) if query.matches(reg, at)]

    def get(self, tenant: str, registration_id: str,
            now: datetime | None = None) -> Registration | None:
        """One registration that applies now, or None."""
        reg = self._by_tenant.get(tenant, {}).get(registration_id)
        if reg is None or reg.expired(now or _now()):
            return None
        return reg

    async def stored(self, tenant: str, registration_id: str,
                     now: datetime | None = None) -> bool:
        """True if the store holds the registration, in force at ``now`` (another
        process may have created it an instant ago, before the feed told this one)."""
        record = await self.store.get_record(tenant, COLLECTION, registration_id)
        registration = None if record is None else _read(tenant, record)
        return registration is not None and not registration.expired(now or _now())

    def tenants(self) -> list[str]:
        """The tenants that have registrations, sorted."""
        return sorted(tenant for tenant, regs in self._by_tenant.items() if regs)

    def on_change(self, listener: RegistrationListener, *,
                  remote: bool = True) -> Callable[[], None]:
        entry = (listener, remote)
        self._listeners.append(entry)
        return lambda: self._listeners.remove(entry)

    # -- writes ---------------------------------------------------------------------------
    async def put(self, tenant: str, registration: Registration) -> None:
        """Store a created or updated registration, then tell the listeners."""
        await self.store.put_record(tenant, COLLECTION, registration.id,
                                    registration_record(registration))
        regs = self._by_tenant.setdefault(tenant, {})
        before = regs.get(registration.id)
        regs[registration.id] = registration
        self._ordered.pop(tenant, None)
        self._dirty.discard((tenant, registration.id))
        self._schedule()
        self._tell(tenant, before, registration, local=True)

    async def delete(self, tenant: str, registration_id: str) -> bool:
        """Remove a registration; False if there was none (stored or in memory)."""
        stored = await self.store.delete_record(tenant, COLLECTION, registration_id)
        before = self._by_tenant.get(tenant, {}).pop(registration_id, None)
        self._ordered.pop(tenant, None)
        self._dirty.discard((tenant, registration_id))
        if before is not None:
            # told as this process's change only if this process removed the record
            self._tell(tenant, before, None, local=stored)
        return stored or before is not None

    async def reload(self, tenant: str, registration_id: str) -> None:
        """Catch up with a registration another process created, changed or deleted."""
        record = await self.store.get_record(tenant, COLLECTION, registration_id)
        regs = self._by_tenant.setdefault(tenant, {})
        before = regs.get(registration_id)
        after = None if record is None else _read(tenant, record)
        if after is None:
            if regs.pop(registration_id, None) is not None:
                self._ordered.pop(tenant, None)
                self._tell(tenant, before, None, local=False)
            return
        if before == after:
            return
        regs[registration_id] = after
        self._ordered.pop(tenant, None)
        self._schedule()
        self._tell(tenant, before, after, local=False)

    def record_delivery(self, tenant: str, registration_id: str, ok: bool) -> None:
        regs = self._by_tenant.get(tenant)
        reg = None if regs is None else regs.get(registration_id)
        if regs is None or reg is None:
            return
        stamp = format_datetime(_now())
        delivery = reg.delivery.succeeded(stamp) if ok else reg.delivery.failed(stamp)
        fresh = regs[registration_id] = reg.with_delivery(delivery)
        cached = self._ordered.get(tenant)
        if cached is not None:  # same order: the one registration replaced, no sort
            ordered, expiring = cached
            self._ordered[tenant] = (
                tuple(fresh if r.id == registration_id else r for r in ordered), expiring)
        self._dirty.add((tenant, registration_id))

    def _tell(self, tenant: str, before: Registration | None,
              after: Registration | None, *, local: bool) -> None:
        for listener, remote in list(self._listeners):
            if not (local or remote):
                continue
            try:
                listener(tenant, before, after)
            except Exception:  # a listener's bug must not undo a stored write
                log.exception("registration listener failed")

    # -- status members, written back --------------------------------------------------
    async def flush(self) -> None:
        """Write back the status members distributed operations changed."""
        dirty, self._dirty = self._dirty, set()
        for tenant, registration_id in sorted(dirty):
            reg = self._by_tenant.get(tenant, {}).get(registration_id)
            if reg is not None:
                await self.store.put_record(tenant, COLLECTION, reg.id, registration_record(reg))

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.flush()
            except Exception:
                log.exception("registration status members could not be written back")

    # -- expiry (5.9.2.4 expiresAt) -------------------------------------------------------
    def _expiries(self) -> Iterable[datetime]:
        for regs in self._by_tenant.values():
            for reg in regs.values():
                if reg.expires_at is not None:
                    yield parse_datetime(reg.expires_at)

    def _schedule(self) -> None:
        """Set the timer to the next expiry (only once the registry was started)."""
        if self._flusher is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        upcoming = min(self._expiries(), default=None)
        if upcoming is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, (upcoming - _now()).total_seconds())
        self._timer = loop.call_later(delay, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = asyncio.get_running_loop().create_task(self.sweep())

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete every registration expired at ``now``; how many went."""
        at = now or _now()
        gone = [(tenant, reg.id) for tenant, regs in self._by_tenant.items()
                for reg in regs.values() if reg.expired(at)]
        for tenant, registration_id in gone:
            try:
                await self.delete(tenant, registration_id)
            except Exception:
                log.exception("expired registration %s could not be deleted", registration_id)
        self._schedule()
        return len(gone)


def _read(tenant: str, record: dict[str, object]) -> Registration | None:
    try:
        return registration_from_record(dict(record))
    except Exception:
        log.exception("stored registration %r of tenant %r is damaged: skipped",
                      record.get("id"), tenant)
        return None
