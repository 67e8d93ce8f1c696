"""Hosted contexts and generic records (subscriptions, registrations...) on MongoDB.

Contexts are broker-wide: collection ``contexts`` of the default tenant's
database.  Records live in their tenant's database, one collection per kind
(the ``collection`` argument), as ``{"_id": record id, "doc": document}``; keys
of the document are encoded like entity keys (mongo_keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import DEFAULT_TENANT, ContextRecord
from .keys import decode_doc, encode_doc
from .support import faults

ENTITIES = "entities"
TENANTS = "tenants"
CONTEXTS = "contexts"
_RESERVED = frozenset({ENTITIES, TENANTS, CONTEXTS})


class RecordsMixin:
    """The context and record methods of ``MongoStore``."""

    if TYPE_CHECKING:

        def _coll(self, tenant: str, name: str) -> Any: ...

        def stamp(self, doc: dict[str, Any]) -> dict[str, Any]: ...

        async def ensure_tenant(self, tenant: str) -> None: ...

        async def list_tenants(self) -> list[str]: ...

    # -- contexts (clause 5.13), broker-wide in the default tenant's database ----------------
    async def put_context(self, record: ContextRecord) -> None:
        """Insert or replace a context record."""
        doc = {
            "_id": record.url,
            "kind": record.kind,
            "document": encode_doc(record.document),
            "createdAt": record.created_at,
            "extra": encode_doc(record.extra),
        }
        self.stamp(doc)  # the writing process (other processes drop the cached context)
        with faults("context write"):
            await self._coll(DEFAULT_TENANT, CONTEXTS).replace_one(
                {"_id": record.url}, doc, upsert=True
            )

    async def get_context(self, url: str) -> ContextRecord | None:
        """The context record for ``url``, or None."""
        with faults("context read"):
            doc = await self._coll(DEFAULT_TENANT, CONTEXTS).find_one({"_id": url})
        return None if doc is None else _context(doc)

    async def list_contexts(self) -> list[ContextRecord]:
        """Every context record, sorted by URL."""
        with faults("context listing"):
            cursor = self._coll(DEFAULT_TENANT, CONTEXTS).find({}, sort=[("_id", 1)])
            docs = await cursor.to_list()
        return [_context(doc) for doc in docs]

    async def delete_context(self, url: str) -> bool:
        """Remove a context record; False if there was none."""
        with faults("context deletion"):
            done = await self._coll(DEFAULT_TENANT, CONTEXTS).delete_one({"_id": url})
        return bool(done.deleted_count)

    # -- generic records (subscriptions, registrations...), one collection each ---------------
    def _records(self, tenant: str, collection: str) -> Any:
        if (
            not isinstance(collection, str)
            or not collection
            or collection in _RESERVED
            or collection.startswith("system.")
            or "$" in collection
            or "\x00" in collection
        ):
            raise ValueError(f"invalid record collection name {collection!r}")
        return self._coll(tenant, collection)

    async def put_record(
        self, tenant: str, collection: str, record_id: str, document: dict[str, Any]
    ) -> None:
        """Insert or replace one record (a record makes its tenant exist, as an entity does)."""
        coll = self._records(tenant, collection)
        doc = self.stamp({"_id": record_id, "doc": encode_doc(document)})
        await self.ensure_tenant(tenant)
        with faults("record write"):
            await coll.replace_one({"_id": record_id}, doc, upsert=True)

    async def get_record(
        self, tenant: str, collection: str, record_id: str
    ) -> dict[str, Any] | None:
        """The record, or None."""
        coll = self._records(tenant, collection)
        with faults("record read"):
            doc = await coll.find_one({"_id": record_id})
        return None if doc is None else _record(doc)

    async def list_records(self, tenant: str, collection: str) -> list[dict[str, Any]]:
        """Every record of the collection, sorted by id."""
        coll = self._records(tenant, collection)
        with faults("record listing"):
            docs = await coll.find({}, sort=[("_id", 1)]).to_list()
        return [_record(doc) for doc in docs]

    async def delete_record(self, tenant: str, collection: str, record_id: str) -> bool:
        """Remove one record; False if there was none."""
        coll = self._records(tenant, collection)
        with faults("record deletion"):
            done = await coll.delete_one({"_id": record_id})
        return bool(done.deleted_count)

    async def all_records(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        """(tenant, record) for every record of the collection over every tenant."""
        found: list[tuple[str, dict[str, Any]]] = []
        for tenant in [DEFAULT_TENANT, *await self.list_tenants()]:
            found.extend((tenant, doc) for doc in await self.list_records(tenant, collection))
        return found


def _context(doc: dict[str, Any]) -> ContextRecord:
    return ContextRecord(
        url=doc["_id"],
        kind=doc["kind"],
        document=decode_doc(doc["document"]),
        created_at=doc["createdAt"],
        extra=decode_doc(doc.get("extra") or {}),
    )


def _record(doc: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = decode_doc(doc["doc"])
    return record


__all__ = ["CONTEXTS", "ENTITIES", "TENANTS", "RecordsMixin"]
