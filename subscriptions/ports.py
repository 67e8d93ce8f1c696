"""What the subscriptions need from the rest of the broker, as Protocols.

The package imports neither the broker nor a store: the composition root
(``broker.app.create_app``) hands the manager objects that offer these.

- :class:`EntityReader` — the entities a query selects (periodic
  notifications, Linked Entities of ``notification.join``); any
  ``storage.Store`` is one;
- :class:`RecordStore` — per-tenant JSON records, where subscriptions persist
  (``subscriptions.repository.StoreRepository``); any ``storage.Store`` is one;
- :class:`FencedRecords` — record writes guarded by a lease epoch; a store several
  processes share (``storage.sharing.SharedStore``) is one;
- :class:`ContextResolving` — a client's @context value compiled, and the URL
  and body value notifications carry (``broker.contexts.ContextResolver``);
- :class:`Counters` — named counters (``broker.metrics.Metrics``);
- :class:`Outbound` — which addresses notifications may go to
  (``broker.outbound.OutboundPolicy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aiohttp.abc import AbstractResolver

from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.query import EntityQuery

if TYPE_CHECKING:
    from storage.sharing import Fence

__all__ = ["ContextResolving", "Counters", "EntityReader", "FencedRecords", "Outbound",
           "RecordStore"]


class EntityReader(Protocol):
    """Reads of entities by query (names expanded)."""

    async def query_entities(
        self, tenant: str, query: EntityQuery, *, offset: int = 0, limit: int | None = None,
        count: bool = False,
    ) -> tuple[list[Entity], int | None]: ...


@runtime_checkable
class RecordStore(Protocol):
    """Per-tenant JSON documents by collection."""

    async def put_record(self, tenant: str, collection: str, record_id: str,
                         document: dict[str, Any]) -> None: ...

    async def get_record(self, tenant: str, collection: str,
                         record_id: str) -> dict[str, Any] | None: ...

    async def list_records(self, tenant: str, collection: str) -> list[dict[str, Any]]: ...

    async def delete_record(self, tenant: str, collection: str, record_id: str) -> bool: ...

    async def all_records(self, collection: str) -> list[tuple[str, dict[str, Any]]]: ...


@runtime_checkable
class FencedRecords(Protocol):
    """Record replacements done only while a lease is held with a given epoch."""

    async def put_fenced(self, tenant: str, collection: str, record_id: str,
                         document: dict[str, Any], lease: Fence) -> bool: ...


class ContextResolving(Protocol):
    """The @context resolver as subscriptions use it."""

    async def active(self, context: Any) -> ActiveContext: ...

    async def response_url(self, context: Any, tenant: str = "") -> str: ...

    def body_context(self, context: Any) -> Any: ...


class Counters(Protocol):
    """Named counters (notifications sent, failed, dropped)."""

    def incr(self, name: str, amount: int = 1) -> None: ...


class Outbound(Protocol):
    """The outbound request policy: where notifications may be sent.

    Refusals are ``OSError``s (a refused destination is an unreachable one).
    """

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` that may be called; connect to these only."""
        ...

    def check_literal(self, host: str) -> None:
        """Raise if ``host`` is an IP address that may not be called."""
        ...

    def resolver(self) -> AbstractResolver:
        """An aiohttp resolver answering only addresses that may be called."""
        ...
