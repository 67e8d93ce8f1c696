"""Persistence of subscriptions behind a small async interface.

:class:`StoreRepository` keeps them as generic records of the broker's store
(``put_record``/``get_record``/``list_records``/``delete_record``/``all_records``);
:class:`MemoryRepository` is the fallback for a store without records (nothing
survives a restart then).  Documents are JSON-serialisable dicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import orjson

from subscriptions.ports import FencedRecords, RecordStore

if TYPE_CHECKING:
    from storage.sharing import Fence

COLLECTION = "subscriptions"
Document = dict[str, Any]


class Repository(Protocol):
    """Where subscriptions are kept, per tenant, by id."""

    async def put(self, tenant: str, doc: Document) -> None:
        """Insert or replace ``doc`` (its ``id`` is the key)."""

    async def put_fenced(self, tenant: str, doc: Document, lease: Fence) -> bool:
        """Replace the stored ``doc`` only while ``lease`` is held with its epoch; False
        (nothing written) otherwise (subscriptions.ownership, "Fencing")."""

    async def get(self, tenant: str, sub_id: str) -> Document | None:
        """The stored document, or None."""

    async def of_tenant(self, tenant: str) -> list[Document]:
        """Every subscription of the tenant, sorted by id."""

    async def delete(self, tenant: str, sub_id: str) -> bool:
        """Remove one; False if there was none."""

    async def all(self) -> list[tuple[str, Document]]:
        """(tenant, document) for every subscription of every tenant."""


class MemoryRepository:
    """Subscriptions in a dict (serialised, as a store would keep them): for tests and
    stores without records."""

    def __init__(self) -> None:
        self._docs: dict[tuple[str, str], bytes] = {}

    async def put(self, tenant: str, doc: Document) -> None:
        self._docs[(tenant, doc["id"])] = orjson.dumps(doc)

    async def put_fenced(self, tenant: str, doc: Document, lease: Fence) -> bool:
        if (tenant, doc["id"]) not in self._docs:
            return False
        await self.put(tenant, doc)  # one process: nobody else holds leases
        return True

    async def get(self, tenant: str, sub_id: str) -> Document | None:
        raw = self._docs.get((tenant, sub_id))
        return orjson.loads(raw) if raw is not None else None

    async def of_tenant(self, tenant: str) -> list[Document]:
        return [orjson.loads(d) for (t, _), d in sorted(self._docs.items()) if t == tenant]

    async def delete(self, tenant: str, sub_id: str) -> bool:
        return self._docs.pop((tenant, sub_id), None) is not None

    async def all(self) -> list[tuple[str, Document]]:
        return [(t, orjson.loads(d)) for (t, _), d in sorted(self._docs.items())]


class StoreRepository:
    """Subscriptions as records of the broker's store, collection ``subscriptions``
    (``csourceSubscriptions`` for registration subscriptions)."""

    def __init__(self, store: RecordStore, collection: str = COLLECTION) -> None:
        self.store = store
        self.collection = collection

    async def put(self, tenant: str, doc: Document) -> None:
        await self.store.put_record(tenant, self.collection, doc["id"], doc)

    async def put_fenced(self, tenant: str, doc: Document, lease: Fence) -> bool:
        if isinstance(self.store, FencedRecords):
            return await self.store.put_fenced(tenant, self.collection, doc["id"], doc, lease)
        await self.put(tenant, doc)  # a store no other process shares
        return True

    async def get(self, tenant: str, sub_id: str) -> Document | None:
        doc: Document | None = await self.store.get_record(tenant, self.collection, sub_id)
        return doc

    async def of_tenant(self, tenant: str) -> list[Document]:
        docs: list[Document] = await self.store.list_records(tenant, self.collection)
        return docs

    async def delete(self, tenant: str, sub_id: str) -> bool:
        return bool(await self.store.delete_record(tenant, self.collection, sub_id))

    async def all(self) -> list[tuple[str, Document]]:
        pairs: list[tuple[str, Document]] = await self.store.all_records(self.collection)
        return pairs


def repository_for(store: object, collection: str = COLLECTION) -> Repository:
    """A StoreRepository when the store keeps records, else a MemoryRepository."""
    if isinstance(store, RecordStore):
        return StoreRepository(store, collection)
    return MemoryRepository()


__all__ = ["COLLECTION", "MemoryRepository", "Repository", "StoreRepository", "repository_for"]
