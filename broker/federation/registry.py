"""Where the forwarding layer reads a tenant's registrations from (a Protocol).

Registrations are created, stored and updated elsewhere (the
``/csourceRegistrations`` operations, clause 5.9); forwarding only needs the
current registrations of a tenant, synchronously and cheaply, on every
request it plans.  :class:`RegistrationSource` is that need;
:class:`MemoryRegistrations` is the plain implementation tests and the
registry of the registration operations build on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from ngsi_ld.federation import Registration

__all__ = ["MemoryRegistrations", "RegistrationSource"]


class RegistrationSource(Protocol):
    """The registrations a tenant's requests may be forwarded by (what
    ``broker.service.registry.Registrations`` offers distributed operations)."""

    @property
    def empty(self) -> bool:
        """True when no tenant has a registration (every request is then local)."""
        ...

    def holds(self, tenant: str) -> bool:
        """True when ``tenant`` has a registration (expired or not): its requests may
        then be forwarded; another tenant's are not slowed down by it."""
        ...

    def of(self, tenant: str, now: datetime | None = None) -> Sequence[Registration]:
        """The registrations of ``tenant`` ('' the default tenant) that apply at ``now``."""
        ...

    def record_delivery(self, tenant: str, registration_id: str, ok: bool) -> None:
        """A forwarded request to the registration's source succeeded or failed."""
        ...


class MemoryRegistrations:
    """Registrations kept in a dictionary per tenant."""

    def __init__(self, items: Iterable[tuple[str, Registration]] = ()) -> None:
        self._by_tenant: dict[str, dict[str, Registration]] = {}
        #: (tenant, registration id) -> (times sent, times failed)
        self.deliveries: dict[tuple[str, str], tuple[int, int]] = {}
        for tenant, registration in items:
            self.put(tenant, registration)

    @property
    def empty(self) -> bool:
        return not any(self._by_tenant.values())

    def holds(self, tenant: str) -> bool:
        return bool(self._by_tenant.get(tenant))

    def of(self, tenant: str, now: datetime | None = None) -> Sequence[Registration]:
        found = self._by_tenant.get(tenant)
        if not found:
            return ()
        at = now or datetime.now(UTC)
        return tuple(r for _, r in sorted(found.items()) if not r.expired(at))

    def record_delivery(self, tenant: str, registration_id: str, ok: bool) -> None:
        """Counted per registration (``deliveries``), for tests to look at."""
        key = (tenant, registration_id)
        sent, failed = self.deliveries.get(key, (0, 0))
        self.deliveries[key] = (sent + 1, failed + (not ok))

    def put(self, tenant: str, registration: Registration) -> None:
        """Add or replace ``registration`` (by id) in ``tenant``."""
        self._by_tenant.setdefault(tenant, {})[registration.id] = registration

    def remove(self, tenant: str, registration_id: str) -> None:
        """Forget a registration (nothing if unknown)."""
        self._by_tenant.get(tenant, {}).pop(registration_id, None)
