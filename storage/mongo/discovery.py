"""Discovery (clauses 5.7.5 to 5.7.12) on MongoDB, with aggregation pipelines.

Types come from the ``type`` array, attribute names from ``attrNames``, and
kinds and instance counts from ``attrMeta`` (see ``mongo_schema``), so no
entity is decoded: MongoDB groups, the broker only folds the groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..base import AttributeSummary, TypeSummary
from .support import faults

ENTITIES = "entities"


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

    async def type_summaries(
        self, tenant: str, types: Sequence[str] | None = None
    ) -> list[TypeSummary]:
        """Per type: entities (a group on ``type``), attributes and kinds (on ``attrMeta``)."""
        select: list[dict[str, Any]] = [{"$unwind": "$type"}]
        if types is not None:
            select = [{"$match": {"type": {"$in": list(types)}}}, *select]
            select.append({"$match": {"type": {"$in": list(types)}}})
        counts = await self._aggregate(
            tenant, [*select, {"$group": {"_id": "$type", "count": {"$sum": 1}}}]
        )
        attrs = await self._aggregate(
            tenant,
            [
                *select,
                {"$unwind": "$attrMeta"},
                {
                    "$group": {
                        "_id": {"type": "$type", "name": "$attrMeta.name"},
                        "kinds": {"$addToSet": "$attrMeta.kinds"},
                    }
                },
            ],
        )
        found = {row["_id"]: TypeSummary(row["_id"], row["count"]) for row in counts}
        for row in attrs:
            summary = found.get(row["_id"]["type"])
            if summary is not None:
                kinds = summary.attributes.setdefault(row["_id"]["name"], set())
                kinds.update(k for group in row["kinds"] if group for k in group)
        return [found[name] for name in sorted(found)]

    async def attribute_summaries(
        self, tenant: str, names: Sequence[str] | None = None
    ) -> list[AttributeSummary]:
        """Per attribute name: instances, kinds and entity types, from ``attrMeta``."""
        pipeline: list[dict[str, Any]] = []
        if names is not None:
            pipeline.append({"$match": {"attrNames": {"$in": list(names)}}})
        pipeline.append({"$unwind": "$attrMeta"})
        if names is not None:
            pipeline.append({"$match": {"attrMeta.name": {"$in": list(names)}}})
        pipeline.append(
            {
                "$group": {
                    "_id": "$attrMeta.name",
                    "count": {"$sum": "$attrMeta.count"},
                    "kinds": {"$addToSet": "$attrMeta.kinds"},
                    "types": {"$addToSet": "$type"},
                }
            }
        )
        summaries = []
        for row in sorted(await self._aggregate(tenant, pipeline), key=lambda r: r["_id"]):
            summary = AttributeSummary(row["_id"], int(row["count"]))
            summary.kinds.update(k for group in row["kinds"] if group for k in group)
            summary.type_names.update(t for group in row["types"] if group for t in group)
            summaries.append(summary)
        return summaries


__all__ = ["DiscoveryMixin"]
