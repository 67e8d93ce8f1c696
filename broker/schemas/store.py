"""A store that refuses writes whose result breaks a model schema.

Validation sits on the one path every entity write takes, the store's
``modify``/``modify_many`` with a pure mutation (``storage.base``): the
mutation is wrapped so that the entity it produces is checked before anything
is written.  A violation raises :class:`SchemaViolation` from inside the
mutation, so a single write answers 400 and a batch reports that entity in its
errors, exactly as any other refused mutation.  Deletions are never checked.

Everything else is passed to the wrapped store; versioned reads and the shared
store operations stay visible to ``storage.versioned`` and
``storage.sharing`` (one wrapper class per capability, since those
checks are answered once per class).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from broker.schemas.models import ModelSchemas, Violation
from ngsi_ld.errors import ERROR_NAMESPACE, BadRequestData
from ngsi_ld.query import EntityQuery
from ngsi_ld.temporal import History
from storage.base import (
    AttributeSummary,
    Change,
    ContextRecord,
    Entity,
    Mutation,
    Outcome,
    Recorder,
    Store,
    TypeSummary,
    WantsBefore,
)
from storage.temporal import TemporalHistory
from storage.versioned import Versioned, VersionedReads, Wanted, versioned

#: violations listed in the ``detail`` text (all of them are in ``violations``)
DETAIL_LIMIT = 5


class SchemaViolation(BadRequestData):
    """400 BadRequestData whose ProblemDetails lists each violation with its attribute path."""

    def __init__(self, entity_id: str, violations: Sequence[Violation]) -> None:
        shown = "; ".join(str(v) for v in violations[:DETAIL_LIMIT])
        more = len(violations) - DETAIL_LIMIT
        if more > 0:
            shown += f"; and {more} more"
        types = ", ".join(sorted({v.type for v in violations}))
        super().__init__(
            f"entity {entity_id} does not conform to the {types} schema: {shown}",
            violations=[v.to_json() for v in violations],
        )
        self.violations = list(violations)

    @property
    def type_uri(self) -> str:
        return ERROR_NAMESPACE + "BadRequestData"


def checked(schemas: ModelSchemas, entity_id: str, mutation: Mutation) -> Mutation:
    """``mutation`` followed by the schema check of the entity it produces."""

    def check(current: Entity | None) -> Entity | None:
        result = mutation(current)
        if result is not None:
            found = schemas.violations(result)
            if found:
                raise SchemaViolation(entity_id, found)
        return result

    return check


class ValidatingStore(Store):
    """``inner`` with every write checked against ``schemas`` (see the module docstring)."""

    def __init__(self, inner: Store, schemas: ModelSchemas) -> None:
        self.inner = inner
        self.schemas = schemas
        self.kind = inner.kind
        self.batches_in_flight = inner.batches_in_flight

    def __getattr__(self, name: str) -> Any:
        # optional capabilities of the wrapped store (shared-store feed and leases...)
        return getattr(self.inner, name)

    @property
    def wants_before(self) -> WantsBefore | None:
        """The wrapped store's hint (``Store.wants_before``): the writes are its own."""
        return self.inner.wants_before

    @wants_before.setter
    def wants_before(self, hint: WantsBefore | None) -> None:
        self.inner.wants_before = hint

    # -- writes: checked ---------------------------------------------------------------
    async def modify(self, tenant: str, entity_id: str, mutation: Mutation, *,
                     record: Recorder | None = None,
                     posted: Sequence[History] = ()) -> Change:
        check = checked(self.schemas, entity_id, mutation)
        return await self.inner.modify(tenant, entity_id, check, record=record, posted=posted)

    async def modify_many(
        self, tenant: str, mutations: Sequence[tuple[str, Mutation]], *,
        record: Recorder | None = None,
    ) -> list[Outcome]:
        wrapped = [(eid, checked(self.schemas, eid, m)) for eid, m in mutations]
        return await self.inner.modify_many(tenant, wrapped, record=record)

    @property
    def history(self) -> TemporalHistory | None:
        return self.inner.history

    # -- everything else: passed through --------------------------------------------------
    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def health(self) -> dict[str, Any]:
        return await self.inner.health()

    async def tenant_exists(self, tenant: str) -> bool:
        return await self.inner.tenant_exists(tenant)

    async def ensure_tenant(self, tenant: str) -> None:
        await self.inner.ensure_tenant(tenant)

    async def list_tenants(self) -> list[str]:
        return await self.inner.list_tenants()

    async def get_entity(self, tenant: str, entity_id: str) -> Entity | None:
        return await self.inner.get_entity(tenant, entity_id)

    async def query_entities(
        self, tenant: str, query: EntityQuery, *, offset: int = 0, limit: int | None = None,
        count: bool = False,
    ) -> tuple[list[Entity], int | None]:
        return await self.inner.query_entities(
            tenant, query, offset=offset, limit=limit, count=count
        )

    async def due_expiries(self, now: int, limit: int) -> list[tuple[str, str]]:
        return await self.inner.due_expiries(now, limit)

    async def next_expiry(self) -> int | None:
        return await self.inner.next_expiry()

    def data_version(self, tenant: str) -> Hashable | None:
        return self.inner.data_version(tenant)

    async def type_names(self, tenant: str) -> list[str]:
        return await self.inner.type_names(tenant)

    async def type_summaries(
        self, tenant: str, types: Sequence[str] | None = None
    ) -> list[TypeSummary]:
        return await self.inner.type_summaries(tenant, types)

    async def attribute_names(self, tenant: str) -> list[str]:
        return await self.inner.attribute_names(tenant)

    async def attribute_summaries(
        self, tenant: str, names: Sequence[str] | None = None
    ) -> list[AttributeSummary]:
        return await self.inner.attribute_summaries(tenant, names)

    async def put_context(self, record: ContextRecord) -> None:
        await self.inner.put_context(record)

    async def get_context(self, url: str) -> ContextRecord | None:
        return await self.inner.get_context(url)

    async def list_contexts(self) -> list[ContextRecord]:
        return await self.inner.list_contexts()

    async def delete_context(self, url: str) -> bool:
        return await self.inner.delete_context(url)

    async def put_record(
        self, tenant: str, collection: str, record_id: str, document: dict[str, Any]
    ) -> None:
        await self.inner.put_record(tenant, collection, record_id, document)

    async def get_record(
        self, tenant: str, collection: str, record_id: str
    ) -> dict[str, Any] | None:
        return await self.inner.get_record(tenant, collection, record_id)

    async def list_records(self, tenant: str, collection: str) -> list[dict[str, Any]]:
        return await self.inner.list_records(tenant, collection)

    async def delete_record(self, tenant: str, collection: str, record_id: str) -> bool:
        return await self.inner.delete_record(tenant, collection, record_id)

    async def all_records(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        return await self.inner.all_records(collection)


class ValidatingVersionedStore(ValidatingStore):
    """A ValidatingStore around a store with versioned reads (they stay available)."""

    def __init__(self, inner: Store, schemas: ModelSchemas, reads: VersionedReads) -> None:
        super().__init__(inner, schemas)
        self._reads = reads

    async def read_versioned(self, tenant: str, entity_id: str) -> Versioned | None:
        return await self._reads.read_versioned(tenant, entity_id)

    async def query_versioned(
        self, tenant: str, query: EntityQuery, wanted: Wanted, *, offset: int = 0,
        limit: int | None = None, count: bool = False,
    ) -> tuple[list[Versioned], int | None]:
        return await self._reads.query_versioned(
            tenant, query, wanted, offset=offset, limit=limit, count=count
        )


def validating(store: Store, schemas: ModelSchemas | None) -> Store:
    """``store`` checking writes against ``schemas`` (unchanged when there are none)."""
    if not schemas:
        return store
    reads = versioned(store)
    if reads is not None:
        return ValidatingVersionedStore(store, schemas, reads)
    return ValidatingStore(store, schemas)
