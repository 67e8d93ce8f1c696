"""A throw-away in-memory store (``memory:``): tests, demos, benchmarks of the rest.

Everything lives in dicts in the event loop's thread; each method runs without
awaiting, so every operation is atomic with respect to the others.  Entities are
copied in and out, so a caller that edits what it got back never changes the
store.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from ngsi_ld.expiry import earliest_expiry
from ngsi_ld.query import EntityQuery
from ngsi_ld.query import matches as query_matches
from ngsi_ld.temporal import History

from .base import (
    DEFAULT_TENANT,
    Change,
    ContextRecord,
    Entity,
    Mutation,
    Outcome,
    Recorder,
    Store,
)
from .discovery import (
    AttributeSummary,
    StatKey,
    TypeSummary,
    add_stats,
    attributes_from_stats,
    stats_delta,
    types_from_stats,
)
from .helpers import (
    as_ngsi_error,
    check_page,
    copy_entity,
    page,
)
from .memory_history import MemoryHistory


class MemoryStore(Store):
    """Entities, tenants and contexts in process memory; lost at exit."""

    kind = "memory"

    def __init__(self) -> None:
        self._entities: dict[str, dict[str, Entity]] = {DEFAULT_TENANT: {}}
        self._contexts: dict[str, ContextRecord] = {}
        self._records: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._writes = 0
        #: (tenant, id) -> when the first part of the entity expires (clause 4.22)
        self._expiries: dict[tuple[str, str], int] = {}
        #: tenant -> the discovery counters (storage.discovery), kept on write
        self._stats: dict[str, dict[StatKey, int]] = {}
        self._history = MemoryHistory()

    @property
    def history(self) -> MemoryHistory:
        """The temporal history, in memory too."""
        return self._history

    async def health(self) -> dict[str, Any]:
        """Always healthy; reports the number of tenants and entities."""
        return {
            "kind": self.kind,
            "tenants": len(self._entities),
            "entities": sum(len(e) for e in self._entities.values()),
        }

    # -- tenants -----------------------------------------------------------------
    async def tenant_exists(self, tenant: str) -> bool:
        """True for the default tenant and every tenant created so far."""
        return tenant in self._entities

    async def ensure_tenant(self, tenant: str) -> None:
        """Create the tenant if it does not exist."""
        self._entities.setdefault(tenant, {})

    async def list_tenants(self) -> list[str]:
        """Every tenant but the default one, sorted."""
        return sorted(t for t in self._entities if t != DEFAULT_TENANT)

    # -- entities ----------------------------------------------------------------
    async def get_entity(self, tenant: str, entity_id: str) -> Entity | None:
        """A copy of the stored entity, or None."""
        entity = self._entities.get(tenant, {}).get(entity_id)
        return None if entity is None else copy_entity(entity)

    def _apply(self, tenant: str, entity_id: str, mutation: Mutation,
               record: Recorder | None = None, posted: Sequence[History] = ()) -> Change:
        # The mutation works on a copy: if it raises, the stored entity is untouched.
        # Stored entities are replaced, never edited, so `before` can be handed out.
        entities = self._entities.get(tenant, {})
        before = entities.get(entity_id)
        self._writes += 1
        after = mutation(None if before is None else copy_entity(before))
        if after is None:
            entities.pop(entity_id, None)
        else:
            stored = copy_entity(after)
            # Storing an entity makes its tenant exist.
            self._entities.setdefault(tenant, entities)[entity_id] = stored
        add_stats(self._stats.setdefault(tenant, {}), stats_delta(before, after))
        expires = earliest_expiry(after)
        if expires is None:
            self._expiries.pop((tenant, entity_id), None)
        else:
            self._expiries[tenant, entity_id] = expires
        for upserted in posted:  # the temporal API's, after the mutation did not raise
            self._history.write(tenant, upserted, upserting=True)
        if record is not None:
            history = record(before, after, self._history.new_instance_id)
            if history is not None:
                self._history.write(tenant, history)
        return Change(entity_id, before, after)

    async def modify(self, tenant: str, entity_id: str, mutation: Mutation, *,
                     record: Recorder | None = None,
                     posted: Sequence[History] = ()) -> Change:
        """Apply ``mutation`` to one entity; what it raises propagates and nothing is written."""
        return self._apply(tenant, entity_id, mutation, record, posted)

    async def modify_many(
        self, tenant: str, mutations: Sequence[tuple[str, Mutation]], *,
        record: Recorder | None = None,
    ) -> list[Outcome]:
        """Apply each mutation in order, each whole or not at all; one Outcome per input."""
        outcomes: list[Outcome] = []
        for entity_id, mutation in mutations:
            try:
                change = self._apply(tenant, entity_id, mutation, record)
            except Exception as exc:
                outcomes.append(Outcome(entity_id, error=as_ngsi_error(entity_id, exc)))
            else:
                outcomes.append(Outcome(entity_id, change=change))
        return outcomes

    async def due_expiries(self, now: int, limit: int) -> list[tuple[str, str]]:
        """The entities with a part expired at ``now``, earliest first."""
        due = sorted((at, key) for key, at in self._expiries.items() if at <= now)
        return [key for _, key in due[:limit]]

    async def next_expiry(self) -> int | None:
        """The earliest expiry of any entity part, or None."""
        return min(self._expiries.values(), default=None)

    def data_version(self, tenant: str) -> Hashable | None:
        """The number of writes attempted so far (any tenant)."""
        return self._writes

    async def query_entities(
        self,
        tenant: str,
        query: EntityQuery,
        *,
        offset: int = 0,
        limit: int | None = None,
        count: bool = False,
    ) -> tuple[list[Entity], int | None]:
        """Evaluate ``matches`` on every entity of the tenant; sorted by id, paged."""
        check_page(offset, limit)
        entities = self._entities.get(tenant, {})
        candidates = entities.keys() if query.ids is None else set(query.ids) & entities.keys()
        selected: list[str] = []
        stop = None if count or limit is None else offset + limit
        for entity_id in sorted(candidates):
            if query_matches(entities[entity_id], query):
                selected.append(entity_id)
                if stop is not None and len(selected) >= stop:
                    break
        found = [copy_entity(entities[i]) for i in page(selected, offset, limit)]
        return found, len(selected) if count else None

    # -- discovery (clauses 5.7.5 to 5.7.12), from the counters kept on write ----------
    async def type_summaries(
        self, tenant: str, types: Sequence[str] | None = None
    ) -> list[TypeSummary]:
        """A summary per entity type (only ``types`` if given), sorted by type."""
        return types_from_stats(self._stats.get(tenant, {}).items(), types)

    async def attribute_summaries(
        self, tenant: str, names: Sequence[str] | None = None
    ) -> list[AttributeSummary]:
        """A summary per attribute name (only ``names`` if given), sorted by name."""
        return attributes_from_stats(self._stats.get(tenant, {}).items(), names)

    # -- contexts (clause 5.13) -------------------------------------------------------
    async def put_context(self, record: ContextRecord) -> None:
        """Insert or replace a context record (a copy is kept)."""
        self._contexts[record.url] = _copy_record(record)

    async def get_context(self, url: str) -> ContextRecord | None:
        """A copy of the context record for ``url``, or None."""
        record = self._contexts.get(url)
        return None if record is None else _copy_record(record)

    async def list_contexts(self) -> list[ContextRecord]:
        """Copies of every context record, sorted by URL."""
        return [_copy_record(self._contexts[url]) for url in sorted(self._contexts)]

    async def delete_context(self, url: str) -> bool:
        """Remove a context record; False if there was none."""
        return self._contexts.pop(url, None) is not None

    # -- records -----------------------------------------------------------------------
    async def put_record(
        self, tenant: str, collection: str, record_id: str, document: dict[str, Any]
    ) -> None:
        """Insert or replace a document (a copy is kept)."""
        self._records.setdefault((tenant, collection), {})[record_id] = copy_entity(document)

    async def get_record(
        self, tenant: str, collection: str, record_id: str
    ) -> dict[str, Any] | None:
        """A copy of the document, or None."""
        document = self._records.get((tenant, collection), {}).get(record_id)
        return None if document is None else copy_entity(document)

    async def list_records(self, tenant: str, collection: str) -> list[dict[str, Any]]:
        """Copies of every document of the collection, sorted by record id."""
        documents = self._records.get((tenant, collection), {})
        return [copy_entity(documents[key]) for key in sorted(documents)]

    async def delete_record(self, tenant: str, collection: str, record_id: str) -> bool:
        """Remove a document; False if there was none."""
        return self._records.get((tenant, collection), {}).pop(record_id, None) is not None

    async def all_records(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        """(tenant, copy) for every document of the collection, by tenant then id."""
        return [
            (tenant, copy_entity(documents[key]))
            for (tenant, name), documents in sorted(self._records.items())
            if name == collection
            for key in sorted(documents)
        ]


def _copy_record(record: ContextRecord) -> ContextRecord:
    return ContextRecord(
        url=record.url,
        kind=record.kind,
        document=copy_entity({"d": record.document})["d"],
        created_at=record.created_at,
        extra=copy_entity(record.extra),
    )
