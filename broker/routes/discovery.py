"""Clauses 5.7.5 to 5.7.12: the entity types and attributes that exist, over HTTP.

Names are kept expanded in the store and compacted with the request's @context
here; the ``id`` of a type or attribute is its full IRI (5.2.25, 5.2.28), the
``id`` of a list a fresh URN (the list is a synthetic object with no identity).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from broker.app import Handler, add_route, broker_of
from broker.http import JSON, LD_JSON, flag, negotiate, parse_link_context
from broker.render_cache import AnswerCache
from broker.routes.common import respond
from ngsi_ld.errors import ResourceNotFound
from ngsi_ld.jsonld import ActiveContext
from storage.base import AttributeSummary, TypeSummary

TYPES = "/ngsi-ld/v1/types"
ATTRIBUTES = "/ngsi-ld/v1/attributes"
MEDIA = (JSON, LD_JSON)


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


async def _setup(request: web.Request) -> tuple[str, Any, ActiveContext, str]:
    broker = broker_of(request)
    media = negotiate(request.headers.get("Accept"), MEDIA)
    context = parse_link_context(request.headers.get("Link"))
    ctx = await broker.resolver.active(context)
    tenant = await broker.tenant(request)
    return media, context, ctx, tenant


# 5.7.5 Retrieve Available Entity Types, 5.7.6 Retrieve Details of Available Entity Types
async def list_types(request: web.Request) -> web.Response:
    broker = broker_of(request)
    details = flag(request, "details")
    media, context, ctx, tenant = await _setup(request)
    data: Any
    if details:
        data = [entity_type(ctx, s) for s in await broker.store.type_summaries(tenant)]
    else:
        names = await broker.store.type_names(tenant)
        data = {"id": _list_id("EntityTypeList"), "type": "EntityTypeList",
                "typeList": _compact(ctx, names)}
    return await respond(broker, data, media, context)


# 5.7.7 Retrieve Available Entity Type Information
async def type_info(request: web.Request) -> web.Response:
    broker = broker_of(request)
    media, context, ctx, tenant = await _setup(request)
    name = ctx.expand_term(request.match_info["type"])
    found = await broker.store.type_summaries(tenant, [name])
    if not found:
        raise ResourceNotFound(f"no entity of type {request.match_info['type']} exists")
    return await respond(broker, entity_type_info(ctx, found[0]), media, context)


# 5.7.8 Retrieve Available Attributes, 5.7.9 Retrieve Details of Available Attributes
async def list_attributes(request: web.Request) -> web.Response:
    broker = broker_of(request)
    details = flag(request, "details")
    media, context, ctx, tenant = await _setup(request)
    data: Any
    if details:
        data = [attribute(ctx, s) for s in await broker.store.attribute_summaries(tenant)]
    else:
        names = await broker.store.attribute_names(tenant)
        data = {"id": _list_id("AttributeList"), "type": "AttributeList",
                "attributeList": _compact(ctx, names)}
    return await respond(broker, data, media, context)


# 5.7.10 Retrieve Available Attribute Information
async def attribute_info(request: web.Request) -> web.Response:
    broker = broker_of(request)
    media, context, ctx, tenant = await _setup(request)
    name = ctx.expand_term(request.match_info["attrId"])
    found = await broker.store.attribute_summaries(tenant, [name])
    if not found:
        raise ResourceNotFound(f"no entity has an attribute {request.match_info['attrId']}")
    return await respond(broker, attribute(ctx, found[0]), media, context)


SUMMARIES = web.AppKey("discovery_answers", AnswerCache)


def _answers_while_unchanged(handler: Handler) -> Handler:
    """Serve a repeated request from memory while the store's data_version holds.

    Details summarise every entity (seconds at 100k entities on SQLite); a
    dashboard or an explorer asks the same again and again.
    """

    async def cached(request: web.Request) -> web.StreamResponse:
        broker = broker_of(request)
        ctx = await broker.resolver.active(parse_link_context(request.headers.get("Link")))
        tenant = await broker.tenant(request)
        version = broker.store.data_version(tenant)  # before the summaries are read
        return await request.app[SUMMARIES].serve(
            request, tenant, version, ctx, lambda: handler(request)
        )

    return cached


def setup(app: web.Application) -> None:
    app[SUMMARIES] = AnswerCache(size=64)
    cached = _answers_while_unchanged
    add_route(app, "GET", TYPES, cached(list_types), "retrieveTypes")
    add_route(app, "GET", TYPES + "/{type}", cached(type_info), "retrieveType")
    add_route(app, "GET", ATTRIBUTES, cached(list_attributes), "retrieveAttributes")
    add_route(app, "GET", ATTRIBUTES + "/{attrId}", cached(attribute_info), "retrieveAttribute")


__all__ = ["attribute", "entity_type", "entity_type_info", "setup"]
