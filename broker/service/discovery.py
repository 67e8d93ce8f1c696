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
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from broker.service import discovered
from broker.service.answers import entity_reply
from broker.service.core import Call, Service
from broker.service.reply import Reply
from ngsi_ld.bodies import JSON, LD_JSON
from ngsi_ld.errors import ResourceNotFound
from ngsi_ld.headers import negotiate, parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.params import flag
from storage.base import AttributeSummary, TypeSummary

__all__ = [
    "attribute", "attribute_info", "entity_type", "entity_type_info", "list_attributes",
    "list_types", "type_info",
]

MEDIA = (JSON, LD_JSON)
#: what a discovery read computes, given (media, client context, compiled context, tenant)
_Compute = Callable[[str, Any, ActiveContext, str], Awaitable[Reply]]


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
    """``compute``'s answer, kept while the store's data_version holds."""
    ctx = await service.resolver.active(parse_link_context(call.link))
    tenant = await service.tenant(call, read=True)
    version = service.store.data_version(tenant)  # before the summaries are read
    if service.sources.serves(tenant):
        version = None  # what sources hold changes without this store knowing

    async def answer() -> Reply:
        media = negotiate(call.accept, MEDIA)
        client_context = parse_link_context(call.link)
        ctx = await service.resolver.active(client_context)
        return await compute(media, client_context, ctx, await service.tenant(call, read=True))

    key = (tenant, call.path_qs, call.accept or "", call.link or "", call.prefer or "")
    return await service.caches.summaries.serve(key, version, ctx, answer)


async def _remote(service: Service, call: Call, tenant: str, operation: str,
                  name: str | None = None) -> discovered.Answers:
    """4.3.6: what the sources registered for ``operation`` answered (none without
    registrations in the tenant)."""
    if not service.sources.serves(tenant):
        return ()
    return await service.sources.discover(tenant, operation, call, name)


# 5.7.5 Retrieve Available Entity Types, 5.7.6 Retrieve Details of Available Entity Types
async def list_types(service: Service, call: Call) -> Reply:
    async def compute(media: str, client_context: Any, ctx: ActiveContext, tenant: str) -> Reply:
        data: Any
        if flag(call.params, "details"):
            remote = await _remote(service, call, tenant, "retrieveEntityTypeDetails")
            summaries = discovered.merge_types(await service.store.type_summaries(tenant),
                                               discovered.type_summaries(remote))
            data = [entity_type(ctx, s) for s in summaries]
        else:
            remote = await _remote(service, call, tenant, "retrieveEntityTypes")
            names = set(await service.store.type_names(tenant)) | discovered.type_names(remote)
            data = {"id": _list_id("EntityTypeList"), "type": "EntityTypeList",
                    "typeList": _compact(ctx, names)}
        return await entity_reply(service, data, media, client_context,
                                  tenant=service.tenant_named(call))

    return await _while_unchanged(service, call, compute)


# 5.7.7 Retrieve Available Entity Type Information
async def type_info(service: Service, call: Call, type_name: str) -> Reply:
    async def compute(media: str, client_context: Any, ctx: ActiveContext, tenant: str) -> Reply:
        expanded = ctx.expand_term(type_name)
        remote = await _remote(service, call, tenant, "retrieveEntityTypeInfo", type_name)
        found = discovered.merge_types(
            await service.store.type_summaries(tenant, [expanded]),
            [s for s in discovered.type_summaries(remote) if s.type == expanded])
        if not found:
            raise ResourceNotFound(f"no entity of type {type_name} exists")
        return await entity_reply(service, entity_type_info(ctx, found[0]), media, client_context,
                                  tenant=service.tenant_named(call))

    return await _while_unchanged(service, call, compute)


# 5.7.8 Retrieve Available Attributes, 5.7.9 Retrieve Details of Available Attributes
async def list_attributes(service: Service, call: Call) -> Reply:
    async def compute(media: str, client_context: Any, ctx: ActiveContext, tenant: str) -> Reply:
        data: Any
        if flag(call.params, "details"):
            remote = await _remote(service, call, tenant, "retrieveAttrTypeDetails")
            summaries = discovered.merge_attributes(
                await service.store.attribute_summaries(tenant),
                discovered.attribute_summaries(remote))
            data = [attribute(ctx, s) for s in summaries]
        else:
            remote = await _remote(service, call, tenant, "retrieveAttrTypes")
            names = set(await service.store.attribute_names(tenant)) | \
                discovered.attribute_names(remote)
            data = {"id": _list_id("AttributeList"), "type": "AttributeList",
                    "attributeList": _compact(ctx, names)}
        return await entity_reply(service, data, media, client_context,
                                  tenant=service.tenant_named(call))

    return await _while_unchanged(service, call, compute)


# 5.7.10 Retrieve Available Attribute Information
async def attribute_info(service: Service, call: Call, name: str) -> Reply:
    async def compute(media: str, client_context: Any, ctx: ActiveContext, tenant: str) -> Reply:
        expanded = ctx.expand_term(name)
        remote = await _remote(service, call, tenant, "retrieveAttrTypeInfo", name)
        found = discovered.merge_attributes(
            await service.store.attribute_summaries(tenant, [expanded]),
            [s for s in discovered.attribute_summaries(remote) if s.name == expanded])
        if not found:
            raise ResourceNotFound(f"no entity has an attribute {name}")
        return await entity_reply(service, attribute(ctx, found[0]), media, client_context,
                                  tenant=service.tenant_named(call))

    return await _while_unchanged(service, call, compute)
