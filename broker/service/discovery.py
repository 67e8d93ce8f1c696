"""Clauses 5.7.5 to 5.7.12: the entity types and attributes that exist.

Names are kept expanded in the store and compacted with the request's
@context here; the ``id`` of a type or attribute is its full IRI (5.2.25,
5.2.28), the ``id`` of a list a fresh URN (the list is a synthetic object with
no identity).  Details summarise every entity (seconds at 100k entities on
SQLite), so every answer is kept in the summaries cache while the store's
data_version holds: a dashboard or an explorer asks the same again and again.

In a tenant with Context Source registrations (4.3.6), the sources registered
for the operation are asked too and their answers merged
(``broker.service.discovered``); such answers are not cached, since what the
sources hold changes without this store knowing.  ``local=true`` keeps it local.
A count that more than one party (this broker, a source) contributes to is made
distinct: the sources say which entities, or attribute instances, they hold
(``Sources.held``) and the union with the local ones is counted, so an entity
held in two places counts once; when a source cannot say, the sum stays (an
upper bound; docs/federation.md, "Discovery counts").
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from broker.service import discovered
from broker.service.answers import entity_reply
from broker.service.core import Call, Service
from broker.service.reply import Reply
from ngsi_ld.bodies import JSON, LD_JSON
from ngsi_ld.errors import ResourceNotFound
from ngsi_ld.headers import negotiate, parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.params import flag
from ngsi_ld.query import EntityQuery, TypeName
from storage.base import AttributeSummary, TypeSummary

__all__ = [
    "attribute", "attribute_info", "entity_type", "entity_type_info", "list_attributes",
    "list_types", "type_info",
]

MEDIA = (JSON, LD_JSON)
#: what a discovery read answers (its body's data), given (compiled context, tenant)
_Compute = Callable[[ActiveContext, str], Awaitable[Any]]


def _list_id(kind: str) -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex}"


def _compact(ctx: ActiveContext, names: Any) -> list[str]:
    return sorted(ctx.compact_iri(name) for name in names)


# 5.2.25 EntityType
def entity_type(ctx: ActiveContext, summary: TypeSummary) -> dict[str, Any]:
    return {
        "id": summary.type,
        "type": "EntityType",
        "typeName": ctx.compact_iri(summary.type),
        "attributeNames": _compact(ctx, summary.attributes),
    }


# 5.2.26 EntityTypeInfo
def entity_type_info(ctx: ActiveContext, summary: TypeSummary) -> dict[str, Any]:
    return {
        "id": summary.type,
        "type": "EntityTypeInfo",
        "typeName": ctx.compact_iri(summary.type),
        "entityCount": summary.entity_count,
        "attributeDetails": [
            {
                "id": name,
                "type": "Attribute",
                "attributeName": ctx.compact_iri(name),
                "attributeTypes": sorted(kinds),
            }
            for name, kinds in sorted(summary.attributes.items())
        ],
    }


# 5.2.28 Attribute
def attribute(ctx: ActiveContext, summary: AttributeSummary) -> dict[str, Any]:
    return {
        "id": summary.name,
        "type": "Attribute",
        "attributeName": ctx.compact_iri(summary.name),
        "attributeCount": summary.instance_count,
        "attributeTypes": sorted(summary.kinds),
        "typeNames": _compact(ctx, summary.type_names),
    }


async def _while_unchanged(service: Service, call: Call, compute: _Compute) -> Reply:
    """``compute``'s answer in the media the client accepts, kept while the store's
    data_version holds."""
    ctx = await service.resolver.active(parse_link_context(call.link))
    tenant = await service.tenant(call, read=True)
    version = service.store.data_version(tenant)  # before the summaries are read
    if service.sources.serves(tenant):
        version = None  # what sources hold changes without this store knowing

    async def answer() -> Reply:
        media = negotiate(call.accept, MEDIA)
        client_context = parse_link_context(call.link)
        ctx = await service.resolver.active(client_context)
        data = await compute(ctx, await service.tenant(call, read=True))
        return await entity_reply(service, data, media, client_context,
                                  tenant=service.tenant_named(call))

    key = (tenant, call.path_qs, call.accept or "", call.link or "", call.prefer or "")
    return await service.caches.summaries.serve(key, version, ctx, answer, fresh=call.fresh)


async def _remote(service: Service, call: Call, tenant: str, operation: str,
                  name: str | None = None) -> discovered.Answers:
    """4.3.6: what the sources registered for ``operation`` answered (none without
    registrations in the tenant)."""
    if not service.sources.serves(tenant):
        return ()
    return await service.sources.discover(tenant, operation, call, name)


#: an entity (id, None) or an attribute instance (entity id, datasetId or None)
_Key = tuple[str, str | None]


def _entities(found: Iterable[Entity]) -> set[_Key]:
    return {(entity["id"], None) for entity in found}


def _instances(name: str) -> Callable[[Iterable[Entity]], set[_Key]]:
    # 4.5.5: the instances of one entity with one datasetId are one, wherever held
    def keys(found: Iterable[Entity]) -> set[_Key]:
        return {(entity["id"], instance.get("datasetId"))
                for entity in found for instance in (entity.get("attrs") or {}).get(name, ())}
    return keys


def _contributors(*counts: int) -> int:
    return sum(1 for count in counts if count > 0)


async def _distinct(service: Service, call: Call, tenant: str, operation: str, name: str,
                    query: EntityQuery, keys: Callable[[Iterable[Entity]], set[_Key]],
                    summed: int) -> int:
    """How many distinct entities (or attribute instances) this broker and the sources
    hold together; ``summed`` when a source cannot say which it holds."""
    held = await service.sources.held(tenant, operation, call, name)
    if held is None:
        return summed
    local, _ = await service.store.query_entities(tenant, query)
    return len(held.union(keys(local)))


async def _distinct_attributes(service: Service, call: Call, tenant: str, operation: str,
                               merged: Sequence[AttributeSummary],
                               local: Sequence[AttributeSummary],
                               remote: Sequence[AttributeSummary]) -> None:
    """Make the attributeCount of every attribute more than one party counted distinct."""
    counts: dict[str, list[int]] = {}
    for summary in (*local, *remote):
        counts.setdefault(summary.name, []).append(summary.instance_count)
    shared = [s for s in merged if _contributors(*counts.get(s.name, ())) > 1]
    totals = await asyncio.gather(*(
        _distinct(service, call, tenant, operation, s.name, EntityQuery(attrs=[s.name]),
                  _instances(s.name), s.instance_count) for s in shared))
    for summary, total in zip(shared, totals, strict=True):
        summary.instance_count = total


# 5.7.5 Retrieve Available Entity Types, 5.7.6 Retrieve Details of Available Entity Types
async def list_types(service: Service, call: Call) -> Reply:
    async def compute(ctx: ActiveContext, tenant: str) -> Any:
        if flag(call.params, "details"):
            remote = await _remote(service, call, tenant, "retrieveEntityTypeDetails")
            summaries = discovered.merge_types(await service.store.type_summaries(tenant),
                                               discovered.type_summaries(remote))
            return [entity_type(ctx, s) for s in summaries]
        remote = await _remote(service, call, tenant, "retrieveEntityTypes")
        names = set(await service.store.type_names(tenant)) | discovered.type_names(remote)
        return {"id": _list_id("EntityTypeList"), "type": "EntityTypeList",
                "typeList": _compact(ctx, names)}

    return await _while_unchanged(service, call, compute)


# 5.7.7 Retrieve Available Entity Type Information
async def type_info(service: Service, call: Call, type_name: str) -> Reply:
    async def compute(ctx: ActiveContext, tenant: str) -> Any:
        expanded = ctx.expand_term(type_name)
        operation = "retrieveEntityTypeInfo"
        remote = await _remote(service, call, tenant, operation, type_name)
        local = await service.store.type_summaries(tenant, [expanded])
        theirs = [s for s in discovered.type_summaries(remote) if s.type == expanded]
        found = discovered.merge_types(local, theirs)
        if not found:
            raise ResourceNotFound(f"no entity of type {type_name} exists")
        if _contributors(*(s.entity_count for s in (*local, *theirs))) > 1:
            found[0].entity_count = await _distinct(
                service, call, tenant, operation, expanded,
                EntityQuery(type_expr=TypeName(expanded)), _entities, found[0].entity_count)
        return entity_type_info(ctx, found[0])

    return await _while_unchanged(service, call, compute)


# 5.7.8 Retrieve Available Attributes, 5.7.9 Retrieve Details of Available Attributes
async def list_attributes(service: Service, call: Call) -> Reply:
    async def compute(ctx: ActiveContext, tenant: str) -> Any:
        if flag(call.params, "details"):
            operation = "retrieveAttrTypeDetails"
            remote = await _remote(service, call, tenant, operation)
            local = await service.store.attribute_summaries(tenant)
            theirs = discovered.attribute_summaries(remote)
            summaries = discovered.merge_attributes(local, theirs)
            if theirs:
                await _distinct_attributes(service, call, tenant, operation, summaries, local,
                                           theirs)
            return [attribute(ctx, s) for s in summaries]
        remote = await _remote(service, call, tenant, "retrieveAttrTypes")
        names = set(await service.store.attribute_names(tenant)) | \
            discovered.attribute_names(remote)
        return {"id": _list_id("AttributeList"), "type": "AttributeList",
                "attributeList": _compact(ctx, names)}

    return await _while_unchanged(service, call, compute)


# 5.7.10 Retrieve Available Attribute Information
async def attribute_info(service: Service, call: Call, name: str) -> Reply:
    async def compute(ctx: ActiveContext, tenant: str) -> Any:
        expanded = ctx.expand_term(name)
        operation = "retrieveAttrTypeInfo"
        remote = await _remote(service, call, tenant, operation, name)
        local = await service.store.attribute_summaries(tenant, [expanded])
        theirs = [s for s in discovered.attribute_summaries(remote) if s.name == expanded]
        found = discovered.merge_attributes(local, theirs)
        if not found:
            raise ResourceNotFound(f"no entity has an attribute {name}")
        await _distinct_attributes(service, call, tenant, operation, found, local, theirs)
        return attribute(ctx, found[0])

    return await _while_unchanged(service, call, compute)
