"""Discovery (clauses 5.7.5 to 5.7.12) on MongoDB.

Details come from the counters of ``storage.discovery`` kept on write: the
collection ``discoveryStats`` of each tenant database holds one document per
counter (``type``, ``attr``, ``kind``, ``n``); every entity write sends its
``stats_delta`` as ``$inc`` upserts (one ``bulk_write`` per write or batch),
right after the entity write (MongoDB's ``$inc`` is atomic, so processes sharing
the database keep one set of counters).  A database that held entities before
the counters existed is counted once, reading every entity, the first time
its details are asked for (the ``#counted`` marker
document records it; a new database is marked when its indexes are made).

Type and attribute names come from aggregation pipelines on the ``type`` array
and ``attrNames`` (see ``mongo_schema``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymongo import UpdateOne

from ..base import AttributeSummary, TypeSummary
from ..discovery import (
    StatKey,
    add_stats,
    attributes_from_stats,
    entity_stats,
    types_from_stats,
)
from .schema import from_document
from .support import faults

ENTITIES = "entities"
STATS = "discoveryStats"
#: the marker document: the counters of this database cover every entity
COUNTED = "#counted"


def stat_id(key: StatKey) -> str:
    """The ``_id`` of a counter document (names are IRIs: no line breaks in them)."""
    return "\n".join(key)


def stat_updates(delta: dict[StatKey, int]) -> list[UpdateOne]:
    """The ``$inc`` upserts that add ``delta`` to the counter documents."""
    return [
        UpdateOne(
            {"_id": stat_id(key)},
            {"$inc": {"n": n}, "$setOnInsert": {"type": key[0], "attr": key[1], "kind": key[2]}},
            upsert=True,
        )
        for key, n in sorted(delta.items())
    ]


class DiscoveryMixin:
    """The discovery methods of ``MongoStore``."""

    if TYPE_CHECKING:

        def _coll(self, tenant: str, name: str) -> Any: ...

        async def tenant_exists(self, tenant: str) -> bool: ...

    # -- discovery (clauses 5.7.5 to 5.7.12), with aggregation pipelines ----------------------
    async def _aggregate(self, tenant: str, pipeline: list[dict[str, Any]]) -> list[Any]:
        if not await self.tenant_exists(tenant):
            return []
        with faults("discovery"):
            cursor = await self._coll(tenant, ENTITIES).aggregate(pipeline)
            result: list[Any] = await cursor.to_list()
        return result

    async def type_names(self, tenant: str) -> list[str]:
        """Every entity type, sorted: a group on the unwound ``type``."""
        rows = await self._aggregate(
            tenant, [{"$unwind": "$type"}, {"$group": {"_id": "$type"}}, {"$sort": {"_id": 1}}]
        )
        return [row["_id"] for row in rows]

    async def attribute_names(self, tenant: str) -> list[str]:
        """Every attribute name, sorted: a group on the unwound ``attrNames``."""
        rows = await self._aggregate(
            tenant,
            [{"$unwind": "$attrNames"}, {"$group": {"_id": "$attrNames"}}, {"$sort": {"_id": 1}}],
        )
        return [row["_id"] for row in rows]

    # -- the counters kept on write ----------------------------------------------------
    async def add_counts(self, tenant: str, delta: dict[StatKey, int]) -> None:
        """Add a write's ``stats_delta`` to the tenant's counters (one bulk write)."""
        if not delta:
            return
        with faults("discovery statistics"):
            await self._coll(tenant, STATS).bulk_write(stat_updates(delta), ordered=False)

    async def mark_counted(self, tenant: str) -> None:
        """Record that the tenant's counters cover every entity, if it holds none yet."""
        with faults("discovery statistics"):
            if await self._coll(tenant, ENTITIES).find_one({}, {"_id": 1}) is None:
                await self._coll(tenant, STATS).update_one(
                    {"_id": COUNTED}, {"$set": {"n": 0}}, upsert=True
                )

    async def _stats(
        self, tenant: str, field: str, values: Sequence[str] | None
    ) -> list[tuple[StatKey, int]]:
        if not await self.tenant_exists(tenant):
            return []
        coll = self._coll(tenant, STATS)
        with faults("discovery"):
            counted = await coll.find_one({"_id": COUNTED})
        if counted is None:
            await self._count_once(tenant)
        flt: dict[str, Any] = {"n": {"$gt": 0}, "type": {"$exists": True}}
        if values is not None:
            flt[field] = {"$in": list(values)}
        with faults("discovery"):
            docs = await coll.find(flt).to_list()
        return [((d["type"], d["attr"], d["kind"]), int(d["n"])) for d in docs]

    async def _count_once(self, tenant: str) -> None:
        """Count a database written before the counters existed (every entity read once)."""
        totals: dict[StatKey, int] = {}
        with faults("discovery"):
            cursor = self._coll(tenant, ENTITIES).find({})
            async for doc in cursor:
                add_stats(totals, dict(entity_stats(from_document(doc))))
        coll = self._coll(tenant, STATS)
        with faults("discovery statistics"):
            await coll.delete_many({})
            if totals:
                await coll.bulk_write(stat_updates(totals), ordered=False)
            await coll.update_one({"_id": COUNTED}, {"$set": {"n": 0}}, upsert=True)

    async def type_summaries(
        self, tenant: str, types: Sequence[str] | None = None
    ) -> list[TypeSummary]:
        """Per type: entities, attributes and kinds, from the counters."""
        return types_from_stats(await self._stats(tenant, "type", types), types)

    async def attribute_summaries(
        self, tenant: str, names: Sequence[str] | None = None
    ) -> list[AttributeSummary]:
        """Per attribute name: instances, kinds and entity types, from the counters."""
        return attributes_from_stats(await self._stats(tenant, "attr", names), names)


__all__ = ["COUNTED", "STATS", "DiscoveryMixin", "stat_id", "stat_updates"]
