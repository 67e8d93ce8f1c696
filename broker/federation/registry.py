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
from typing import Protocol

from ngsi_ld.federation import Registration

__all__ = ["MemoryRegistrations", "RegistrationSource"]


class RegistrationSource(Protocol):
    """The registrations a tenant's requests may be forwarded by."""

    def any(self) -> bool:
        """True if some tenant has a registration (False: every request is local)."""
        ...

    def of(self, tenant: str) -> Sequence[Registration]:
        """The registrations of ``tenant`` ('' the default tenant), expired ones included."""
        ...


class MemoryRegistrations:
    """Registrations kept in a dictionary per tenant."""

    def __init__(self, items: Iterable[tuple[str, Registration]] = ()) -> None:
        self._by_tenant: dict[str, dict[str, Registration]] = {}
        for tenant, registration in items:
            self.put(tenant, registration)

    def any(self) -> bool:
        return any(self._by_tenant.values())

    def of(self, tenant: str) -> Sequence[Registration]:
        found = self._by_tenant.get(tenant)
        return tuple(found.values()) if found else ()

    def put(self, tenant: str, registration: Registration) -> None:
        """Add or replace ``registration`` (by id) in ``tenant``."""
        self._by_tenant.setdefault(tenant, {})[registration.id] = registration

    def remove(self, tenant: str, registration_id: str) -> None:
        """Forget a registration (nothing if unknown)."""
        self._by_tenant.get(tenant, {}).pop(registration_id, None)
