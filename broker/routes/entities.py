"""Clauses 5.6 and 5.7.1 of ETSI GS CIM 009 v1.8: entities and their attributes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from broker.app import Broker, add_route, broker_of
from broker.http import (
    JSON,
    LD_JSON,
    MERGE_PATCH,
    flag,
    json_response,
    negotiate,
    options,
    parse_link_context,
    read_body,
)
from broker.routes.common import (
    ENTITIES,
    READ_MEDIA,
    link_only,
    path_entity_id,
    publish,
    respond,
    view_of,
)
from ngsi_ld import attribute_ops, operations
from ngsi_ld.attributes import parse_attribute
from ngsi_ld.entity import parse_entity, parse_fragment
from ngsi_ld.errors import BadRequestData, ResourceNotFound
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.timeutil import now_iso

WRITE_OPTIONS = frozenset({"keyValues", "simplified", "concise", "normalized", "noOverwrite"})


def _key_values(opts: set[str]) -> bool:
    return bool(opts & {"keyValues", "simplified"})


def _fragment(
    ctx: ActiveContext,
    data: Any,
    key_values: bool,
    allow_null: bool = False,
    entity_id: str | None = None,
) -> dict[str, Any]:
    """A request body of attributes, validated and expanded (an internal-form fragment)."""
    parsed = parse_fragment(data, key_values=key_values, allow_null=allow_null)
    if entity_id is not None and parsed.id is not None and parsed.id != entity_id:
        raise BadRequestData(f"the body's id {parsed.id!r} differs from the path's {entity_id!r}")
    fragment: dict[str, Any] = {"attrs": parsed.attrs}
    if parsed.type is not None:
        fragment["type"] = parsed.type
    if parsed.scope is not None:
        fragment["scope"] = parsed.scope
    return ctx.expand_entity(fragment)


def _types(ctx: ActiveContext, wanted: str) -> set[str]:
    """The expanded names of a ``type`` query parameter (a comma-separated list)."""
    return {ctx.expand_term(t.strip()) for t in wanted.split(",") if t.strip()}


async def _write(
    broker: Broker, tenant: str, entity_id: str, mutation: operations.Mutation
) -> None:
    change = await broker.store.modify(tenant, entity_id, mutation)
    publish(broker, tenant, change)


def _attrs_result(
    broker: Broker, ctx: ActiveContext, mutation: operations.AttrsMutation, headers: dict[str, str]
) -> web.Response:
    """204 when every attribute was written, else 207 with the UpdateResult (5.2.18)."""
    result = mutation.result
    if not result.not_updated:
        return web.Response(status=204, headers=headers)
    body = {
        "updated": [ctx.compact_iri(n) for n in result.updated],
        "notUpdated": [
            {"attributeName": ctx.compact_iri(n.attr), "reason": n.reason}
            for n in result.not_updated
        ],
    }
    return json_response(body, status=207, headers=headers)


# 5.6.1 Create Entity
async def create_entity(request: web.Request) -> web.Response:
    broker = broker_of(request)
    body = await read_body(request, broker.settings.max_body_size)
    opts = options(request, WRITE_OPTIONS)
    ctx = await broker.resolver.active(body.context)
    entity = ctx.expand_entity(parse_entity(body.data, key_values=_key_values(opts)))
    tenant = await broker.tenant(request, create=True)
    await _write(broker, tenant, entity["id"], operations.create_entity(entity, now_iso()))
    location = f"{ENTITIES}/{quote(entity['id'], safe=':')}"
    headers = {"Location": location, **await link_only(broker, body.context)}
    return web.Response(status=201, headers=headers)


# 5.7.1 Retrieve Entity
async def retrieve_entity(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    media = negotiate(request.headers.get("Accept"), READ_MEDIA)
    context = parse_link_context(request.headers.get("Link"))
    ctx = await broker.resolver.active(context)
    view = view_of(request, ctx, media)
    tenant = await broker.tenant(request)
    entity = await broker.store.get_entity(tenant, entity_id)
    if entity is None:
        raise ResourceNotFound(f"entity {entity_id} not found")
    wanted = request.query.get("type")
    if wanted is not None and not _types(ctx, wanted) & set(entity.get("type", ())):
        raise ResourceNotFound(f"entity {entity_id} has none of the types {wanted}")
    return await respond(broker, view.render(ctx, entity), media, context)


# 5.6.6 Delete Entity
async def delete_entity(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    tenant = await broker.tenant(request)
    mutation = operations.delete_entity(entity_id)
    wanted = request.query.get("type")
    if wanted is not None:
        context = parse_link_context(request.headers.get("Link"))
        types = _types(await broker.resolver.active(context), wanted)
        delete = mutation

        def mutation(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is not None and not types & set(current.get("type", ())):
                raise ResourceNotFound(f"entity {entity_id} has none of the types {wanted}")
            return delete(current)

    await _write(broker, tenant, entity_id, mutation)
    return web.Response(status=204)


# 5.6.3 Append Entity Attributes
async def append_attrs(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    body = await read_body(request, broker.settings.max_body_size)
    opts = options(request, WRITE_OPTIONS)
    ctx = await broker.resolver.active(body.context)
    fragment = _fragment(ctx, body.data, _key_values(opts), entity_id=entity_id)
    tenant = await broker.tenant(request)
    mutation = operations.append_attributes(
        entity_id, fragment, now_iso(), no_overwrite="noOverwrite" in opts
    )
    await _write(broker, tenant, entity_id, mutation)
    return _attrs_result(broker, ctx, mutation, await link_only(broker, body.context))


# 5.6.2 Update Entity Attributes
async def update_attrs(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    body = await read_body(request, broker.settings.max_body_size)
    opts = options(request, WRITE_OPTIONS)
    ctx = await broker.resolver.active(body.context)
    fragment = _fragment(ctx, body.data, _key_values(opts), allow_null=True, entity_id=entity_id)
    tenant = await broker.tenant(request)
    mutation = operations.update_attributes(entity_id, fragment, now_iso())
    await _write(broker, tenant, entity_id, mutation)
    return _attrs_result(broker, ctx, mutation, await link_only(broker, body.context))


def _one_attribute(
    ctx: ActiveContext, request: web.Request, data: Any, key_values: bool, allow_null: bool
) -> tuple[str, dict[str, Any]]:
    name = request.match_info["attrId"]
    instances = parse_attribute(name, data, key_values=key_values, allow_null=allow_null)
    if len(instances) != 1:
        raise BadRequestData("a single attribute instance is expected in the body")
    expanded = ctx.expand_entity({"attrs": {name: instances}})["attrs"]
    ((iri, (instance,)),) = expanded.items()
    return iri, instance


# 5.6.4 Partial Attribute Update
async def patch_attr(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    body = await read_body(request, broker.settings.max_body_size)
    opts = options(request, WRITE_OPTIONS)
    ctx = await broker.resolver.active(body.context)
    name, fragment = _one_attribute(ctx, request, body.data, _key_values(opts), True)
    tenant = await broker.tenant(request)
    await _write(
        broker,
        tenant,
        entity_id,
        attribute_ops.update_attribute(entity_id, name, fragment, now_iso()),
    )
    return web.Response(status=204, headers=await link_only(broker, body.context))


# 5.6.19 Replace Attribute
async def replace_attr(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    body = await read_body(request, broker.settings.max_body_size)
    opts = options(request, WRITE_OPTIONS)
    ctx = await broker.resolver.active(body.context)
    name, instance = _one_attribute(ctx, request, body.data, _key_values(opts), False)
    tenant = await broker.tenant(request)
    await _write(
        broker,
        tenant,
        entity_id,
        attribute_ops.replace_attribute(entity_id, name, instance, now_iso()),
    )
    return web.Response(status=204, headers=await link_only(broker, body.context))


# 5.6.5 Delete Entity Attribute
async def delete_attr(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    context = parse_link_context(request.headers.get("Link"))
    ctx = await broker.resolver.active(context)
    name = ctx.expand_term(request.match_info["attrId"])
    dataset_id = request.query.get("datasetId")
    delete_all = flag(request, "deleteAll")
    tenant = await broker.tenant(request)
    await _write(
        broker,
        tenant,
        entity_id,
        attribute_ops.delete_attribute(
            entity_id, name, now_iso(), dataset_id=dataset_id, delete_all=delete_all
        ),
    )
    return web.Response(status=204)


# 5.6.17 Merge Entity
async def merge_entity(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    body = await read_body(request, broker.settings.max_body_size, (JSON, LD_JSON, MERGE_PATCH))
    opts = options(request, WRITE_OPTIONS)
    ctx = await broker.resolver.active(body.context)
    fragment = _fragment(ctx, body.data, _key_values(opts), allow_null=True, entity_id=entity_id)
    tenant = await broker.tenant(request)
    await _write(broker, tenant, entity_id, operations.merge_entity(entity_id, fragment, now_iso()))
    return web.Response(status=204, headers=await link_only(broker, body.context))


# 5.6.18 Replace Entity
async def replace_entity(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    body = await read_body(request, broker.settings.max_body_size)
    opts = options(request, WRITE_OPTIONS)
    ctx = await broker.resolver.active(body.context)
    data = body.data
    if isinstance(data, dict) and "id" not in data:
        data = {"id": entity_id, **data}
    entity = ctx.expand_entity(parse_entity(data, key_values=_key_values(opts)))
    if entity["id"] != entity_id:
        raise BadRequestData(
            f"the body's id {entity['id']!r} differs from the path's {entity_id!r}"
        )
    tenant = await broker.tenant(request)
    await _write(broker, tenant, entity_id, operations.replace_entity(entity_id, entity, now_iso()))
    return web.Response(status=204, headers=await link_only(broker, body.context))


def setup(app: web.Application) -> None:
    one = ENTITIES + "/{entityId}"
    attr = one + "/attrs/{attrId}"
    add_route(app, "POST", ENTITIES, create_entity)
    add_route(app, "GET", one, retrieve_entity)
    add_route(app, "DELETE", one, delete_entity)
    add_route(app, "PATCH", one, merge_entity)
    add_route(app, "PUT", one, replace_entity)
    add_route(app, "POST", one + "/attrs", append_attrs)
    add_route(app, "PATCH", one + "/attrs", update_attrs)
    add_route(app, "PATCH", attr, patch_attr)
    add_route(app, "PUT", attr, replace_attr)
    add_route(app, "DELETE", attr, delete_attr)
