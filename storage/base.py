"""The async storage interface every backend implements.

Backends: ``memory`` (throw-away), ``sqlite`` (the embedded default) and
``mongodb`` (production).  Entities go in and come out in the expanded internal
form described in ``docs/architecture.md``; the store never sees a @context.

All writes to an entity go through :meth:`Store.modify`: the backend reads the
current state, calls a pure function with it, and writes the result atomically,
so that concurrent writes to one entity never lose each other.  A batch is
:meth:`Store.modify_many`: each entity is applied whole or not at all, and the
batch is one transaction where the backend allows it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ngsi_ld.errors import NgsiLdError
from ngsi_ld.model import Change, Entity, Mutation
from ngsi_ld.query import EntityQuery, TypeName, TypeOr
from ngsi_ld.temporal import History, InstanceIds

from .discovery import AttributeSummary, TypeSummary, summarize_attributes, summarize_types

DEFAULT_TENANT = ""

#: What a write adds to the temporal history (docs/temporal.md 3.1): called by the
#: store inside the write's transaction with the entity before and after it and a
#: source of fresh instanceIds; the History it returns is written in that
#: transaction (None: nothing to record).
Recorder = Callable[[Entity | None, Entity | None, InstanceIds], History | None]
#: (tenant, entity id, types before or after) -> whether the write's ``before`` may be
#: read (:attr:`Store.wants_before`)
WantsBefore = Callable[[str, str, Collection[str]], bool]

if TYPE_CHECKING:
    from .temporal import TemporalHistory


@dataclass(slots=True)
class Outcome:
    """One entry of :meth:`Store.modify_many`: a change, or the error that refused it."""

    entity_id: str
    change: Change | None = None
    error: NgsiLdError | None = None


@dataclass(slots=True)
class ContextRecord:
    """A JSON-LD context the broker hosts, cached or created implicitly (clause 5.13)."""

    url: str
    kind: str  # "Hosted" | "Cached" | "ImplicitlyCreated"
    document: Any  # the parsed JSON document
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)  # lastUsage, numberOfHits...


class Store(abc.ABC):
    """Async storage of entities, tenants and contexts for one broker process."""

    #: short name shown by /version and /health ("memory", "sqlite", "mongodb")
    kind: str = "abstract"
    #: batch writes worth having parsed at once, the others waiting unparsed
    #: (``broker/service/gate.py``); None: no bound (writes that run side by side)
    batches_in_flight: int | None = None
    #: whether a write of (tenant, entity id, its types before or after) may have its
    #: ``Change.before`` read (the service's change bus tells); a store may then hand
    #: the state before over as the bytes it read (``Change.stored``), decoded only if
    #: read.  A hint: called from the store's threads, it may be wrong either way.
    #: None: every change's ``before`` handed over decoded.
    wants_before: WantsBefore | None = None

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect, create the schema; called once at start-up."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release resources; called once at shutdown."""

    @abc.abstractmethod
    async def health(self) -> dict[str, Any]:
        """Check the store answers; return details for /health or raise ServiceUnavailable."""

    # -- tenants -----------------------------------------------------------------
    @abc.abstractmethod
    async def tenant_exists(self, tenant: str) -> bool:
        """True for the default tenant and for every tenant created so far."""

    @abc.abstractmethod
    async def ensure_tenant(self, tenant: str) -> None:
        """Create the tenant if it does not exist (operations that create entities do)."""

    @abc.abstractmethod
    async def list_tenants(self) -> list[str]:
        """Every tenant but the default one."""

    # -- entities ----------------------------------------------------------------
    @abc.abstractmethod
    async def get_entity(self, tenant: str, entity_id: str) -> Entity | None:
        """The stored entity, or None."""

    @abc.abstractmethod
    async def modify(self, tenant: str, entity_id: str, mutation: Mutation, *,
                     record: Recorder | None = None,
                     posted: Sequence[History] = ()) -> Change:
        """Apply ``mutation`` to one entity atomically; errors it raises propagate.

        ``record``: the history of the write, written with it (stores with a
        :attr:`history`; the others ignore it).  ``posted``: histories posted
        through the temporal API (5.6.11, 5.6.12), upserted as
        :meth:`TemporalHistory.add_history` does, with the write: in its
        transaction where the store has transactions, and not at all when the
        mutation raises.
        """

    @abc.abstractmethod
    async def modify_many(
        self, tenant: str, mutations: Sequence[tuple[str, Mutation]], *,
        record: Recorder | None = None,
    ) -> list[Outcome]:
        """Apply several mutations, each whole or not at all, in one transaction if possible;
        ``record`` as for :meth:`modify`, per entity."""

    @property
    def history(self) -> TemporalHistory | None:
        """The temporal history this store keeps (clause 4.5.6), None if it keeps none."""
        return None

    # -- queries (clauses 5.7.2, 4.9 to 4.11, 4.17) -----------------------------------
    @abc.abstractmethod
    async def query_entities(
        self,
        tenant: str,
        query: EntityQuery,
        *,
        offset: int = 0,
        limit: int | None = None,
        count: bool = False,
    ) -> tuple[list[Entity], int | None]:
        """The entities ``matches(entity, query)`` selects, sorted by id, paged.

        Names in ``query`` must already be expanded (``resolve_names``).  The second
        item is the number of matching entities when ``count`` is true, else None.
        BadRequestData for a negative offset or limit; TooComplexQuery when a
        regular expression runs out of time.
        """

    # -- transient entities (clause 4.22) --------------------------------------------
    @abc.abstractmethod
    async def due_expiries(self, now: int, limit: int) -> list[tuple[str, str]]:
        """(tenant, entity id) of up to ``limit`` entities a part of which (the entity, an
        attribute instance, a sub-attribute) expired at ``now`` (ms since the epoch),
        the earliest first (``ngsi_ld.expiry.earliest_expiry`` of the stored entity)."""

    @abc.abstractmethod
    async def next_expiry(self) -> int | None:
        """When the first part of any stored entity, in any tenant, expires (ms), or None."""

    def data_version(self, tenant: str) -> Hashable | None:
        """A cheap token that changes whenever stored entities may have changed, or None.

        Answered without I/O to the database server, so that the HTTP layer can
        validate cached query answers on every request; None (the default)
        means the backend cannot tell, and nothing is cached.
        """
        return None

    # -- discovery (clauses 5.7.5 to 5.7.12) ----------------------------------------
    async def type_names(self, tenant: str) -> list[str]:
        """Every entity type with at least one entity, sorted (expanded IRIs)."""
        return sorted({s.type for s in await self.type_summaries(tenant)})

    async def type_summaries(
        self, tenant: str, types: Sequence[str] | None = None
    ) -> list[TypeSummary]:
        """A summary per entity type (only ``types`` if given), sorted by type.

        The default reads every entity; a backend may answer from its indexes
        (MongoDB: an aggregation grouping on the type, then on attribute names).
        """
        query = EntityQuery()
        if types is not None:
            names = tuple(TypeName(t) for t in types)
            query = EntityQuery(type_expr=names[0] if len(names) == 1 else TypeOr(names))
        entities, _ = await self.query_entities(tenant, query)
        return summarize_types(entities, types)

    async def attribute_names(self, tenant: str) -> list[str]:
        """Every attribute name some entity has, sorted (expanded IRIs)."""
        return sorted(s.name for s in await self.attribute_summaries(tenant))

    async def attribute_summaries(
        self, tenant: str, names: Sequence[str] | None = None
    ) -> list[AttributeSummary]:
        """A summary per attribute name (only ``names`` if given), sorted by name."""
        query = EntityQuery() if names is None else EntityQuery(attrs=tuple(names))
        entities, _ = await self.query_entities(tenant, query)
        return summarize_attributes(entities, names)

    # -- contexts (clause 5.13) -------------------------------------------------------
    @abc.abstractmethod
    async def put_context(self, record: ContextRecord) -> None:
        """Insert or replace a context record."""

    @abc.abstractmethod
    async def get_context(self, url: str) -> ContextRecord | None:
        """The context record for ``url``, or None."""

    @abc.abstractmethod
    async def list_contexts(self) -> list[ContextRecord]:
        """Every context record."""

    @abc.abstractmethod
    async def delete_context(self, url: str) -> bool:
        """Remove a context record; False if there was none."""

    # -- records: subscriptions, registrations and other per-tenant documents ---------
    @abc.abstractmethod
    async def put_record(
        self, tenant: str, collection: str, record_id: str, document: dict[str, Any]
    ) -> None:
        """Insert or replace the JSON document ``record_id`` of ``collection`` in ``tenant``."""

    @abc.abstractmethod
    async def get_record(
        self, tenant: str, collection: str, record_id: str
    ) -> dict[str, Any] | None:
        """The document, or None."""

    @abc.abstractmethod
    async def list_records(self, tenant: str, collection: str) -> list[dict[str, Any]]:
        """Every document of ``collection`` in ``tenant``, sorted by record id."""

    @abc.abstractmethod
    async def delete_record(self, tenant: str, collection: str, record_id: str) -> bool:
        """Remove a document; False if there was none."""

    @abc.abstractmethod
    async def all_records(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        """(tenant, document) for every document of ``collection`` in every tenant.

        Sorted by tenant then record id; used to resume subscriptions after a restart.
        """


__all__ = [
    "DEFAULT_TENANT", "AttributeSummary", "Change", "ContextRecord", "Entity", "Mutation",
    "Outcome", "Recorder", "Store", "TypeSummary", "WantsBefore",
]
