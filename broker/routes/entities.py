"""Clauses 5.6 and 5.7.1 of ETSI GS CIM 009 v1.8: entities and their attributes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from broker.app import Broker, add_route, broker_of
from broker.http import (
    GEO_JSON,
    JSON,
    LD_JSON,
    MERGE_PATCH,
    Body,
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
    commit,
    link_only,
    live,
    path_entity_id,
    render_cached,
    rendered_at,
    respond,
    respond_rendered,
    version_applied,
    view_of,
    wants_key_values,
)
from broker.routes.linked import render_entities
from ngsi_ld import attribute_ops, operations
from ngsi_ld.attributes import parse_attribute
from ngsi_ld.entity import parse_entity, parse_fragment
from ngsi_ld.errors import BadRequestData, InvalidRequest, ResourceNotFound
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.operations import KEEPS_CURRENT, Mutation, keeps_current
from ngsi_ld.query import matches_types, parse_type_expr, resolve_names
from ngsi_ld.representation import to_feature_collection
from ngsi_ld.timeutil import now_iso
from storage.versioned import versioned

#: 6.3.4: a PATCH body may also be application/merge-patch+json
PATCH_MEDIA = (JSON, LD_JSON, MERGE_PATCH)
WRITE_OPTIONS = frozenset({"keyValues", "simplified", "concise", "normalized", "noOverwrite"})


def _types(ctx: ActiveContext, wanted: str) -> set[str]:
    """The expanded names of a ``type`` query parameter (a comma-separated list)."""
    return {ctx.expand_term(t.strip()) for t in wanted.split(",") if t.strip()}


@dataclass(slots=True)
class WriteRequest:
    """What every write of clause 5.6 starts from: the parsed body and its context."""

    broker: Broker
    request: web.Request
    entity_id: str
    body: Body
    opts: set[str]
    ctx: ActiveContext

    @classmethod
    async def read(
        cls, request: web.Request, media: tuple[str, ...] = (JSON, LD_JSON), *, path_id: bool = True
    ) -> WriteRequest:
        broker = broker_of(request)
        entity_id = path_entity_id(request) if path_id else ""
        body = await read_body(request, broker.settings.max_body_size, media)
        opts = options(request, WRITE_OPTIONS)
        ctx = await broker.resolver.active(body.context)
        return cls(broker, request, entity_id, body, opts, ctx)

    @property
    def key_values(self) -> bool:
        return wants_key_values(self.opts)

    def fragment(self, *, allow_null: bool = False, merge: bool = False) -> dict[str, Any]:
        """The body as attributes, validated and expanded (an internal-form fragment)."""
        parsed = parse_fragment(
            _object(self.body.data), key_values=self.key_values, allow_null=allow_null,
            merge=merge,
        )
        if parsed.id is not None and parsed.id != self.entity_id:
            raise BadRequestData(
                f"the body's id {parsed.id!r} differs from the path's {self.entity_id!r}"
            )
        fragment: dict[str, Any] = {"attrs": parsed.attrs}
        if parsed.type is not None:
            fragment["type"] = parsed.type
        if parsed.scope is not None:
            fragment["scope"] = parsed.scope
        if parsed.expires_at is not None:
            fragment["expiresAt"] = parsed.expires_at
        return self.ctx.expand_entity(fragment)

    def entity(self, data: Any) -> dict[str, Any]:
        """A whole entity body, validated and expanded."""
        return self.ctx.expand_entity(parse_entity(_object(data), key_values=self.key_values))

    def attribute(self, *, allow_null: bool, fragment: bool = False) -> tuple[str, dict[str, Any]]:
        """The body as the one instance of the path's attribute: (expanded name, instance).

        ``fragment``: the body is an Attribute Fragment (5.6.4), type and main
        member optional.
        """
        name = self.request.match_info["attrId"]
        if name == "scope":
            # 5.6.4.4 and 5.6.19.4: scope is not an attribute these operations change
            raise BadRequestData("scope cannot be updated as an attribute; update the entity")
        data = self.body.data
        if isinstance(data, dict) and "@context" in data:
            data = {k: v for k, v in data.items() if k != "@context"}  # the body's, not the attr's
        instances = parse_attribute(
            name, data, key_values=self.key_values, allow_null=allow_null, fragment=fragment
        )
        if len(instances) != 1:
            raise BadRequestData("a single attribute instance is expected in the body")
        ((iri, (instance,)),) = self.ctx.expand_entity({"attrs": {name: instances}})[
            "attrs"
        ].items()
        return iri, instance

    async def apply(self, mutation: operations.Mutation, *, create: bool = False) -> None:
        """Write through the store (atomically) and publish the change event; with a
        ``type`` selector (4.17) the entity must be of the types it selects."""
        tenant = await self.broker.tenant(self.request, create=create)
        gated = type_gated(self.ctx, self.request.query.get("type"), self.entity_id, mutation)
        await commit(self.broker, tenant, self.entity_id, gated)

    async def no_content(self) -> web.Response:
        return web.Response(status=204, headers=await link_only(self.broker, self.body.context))

    async def attrs_result(self, mutation: operations.AttrsMutation) -> web.Response:
        """204 when every attribute was written, else 207 with the UpdateResult (5.2.18)."""
        result = mutation.result
        if not result.not_updated:
            return await self.no_content()
        # attribute names fully qualified, as the store keeps them (what the ETSI
        # test purposes of 5.6.3 compare them with)
        headers = await link_only(self.broker, self.body.context)
        return json_response(result.to_dict(), status=207, headers=headers)


def _object(data: Any) -> Any:
    """An entity or fragment body is a JSON object: anything else is a malformed request."""
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def type_gated(
    ctx: ActiveContext, selector: str | None, entity_id: str, mutation: Mutation
) -> Mutation:
    """``mutation`` applied only to an entity of the types ``selector`` selects (clause
    4.17); another one is ResourceNotFound, as if it did not exist (5.6.2.4 to 5.6.6.4)."""
    if selector is None:
        return mutation
    expr = resolve_names(parse_type_expr(selector), ctx.expand_term)

    def gated(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is not None and not matches_types(expr, current.get("type") or []):
            raise ResourceNotFound(f"entity {entity_id} is not of the type {selector}")
        return mutation(current)

    return keeps_current(gated) if getattr(mutation, KEEPS_CURRENT, False) else gated


# 5.6.1 Create Entity
async def create_entity(request: web.Request) -> web.Response:
    write = await WriteRequest.read(request, path_id=False)
    entity = write.entity(write.body.data)
    write.entity_id = entity["id"]
    await write.apply(operations.create_entity(entity, now_iso()), create=True)
    location = f"{ENTITIES}/{quote(entity['id'], safe=':')}"
    headers = {"Location": location, **await link_only(write.broker, write.body.context)}
    return web.Response(status=201, headers=headers)


# 5.7.1 Retrieve Entity
async def retrieve_entity(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    media = negotiate(request.headers.get("Accept"), READ_MEDIA)
    context = parse_link_context(request.headers.get("Link"))
    ctx = await broker.resolver.active(context)
    view = view_of(request, ctx, media, must_match=True)
    prefer = request.headers.get("Prefer")  # 6.3.6: GeoJSON @context placement
    tenant = await broker.tenant(request)
    wanted = request.query.get("type")
    store = broker.store
    reads = versioned(store)
    headers = version_applied(request)
    if wanted is None and reads is not None and view.plain:
        # Nothing committed since this entity was last read: its version is known
        # and its rendering likely cached, no store read needed.
        data_version = store.data_version(tenant)
        if data_version is not None:
            known = broker.versions.get(tenant, entity_id, data_version)
            if known is not None:
                body = rendered_at(broker, tenant, entity_id, known, view, ctx)
                if body is not None:
                    return await respond_rendered(broker, body, media, context, headers,
                                                  prefer=prefer)
        item = await reads.read_versioned(tenant, entity_id)
        if item is not None and data_version is not None:
            broker.versions.put(tenant, entity_id, data_version, item.version)
        body = None if item is None else render_cached(broker, tenant, view, ctx, item)
        if body is None:
            raise ResourceNotFound(f"entity {entity_id} not found")
        return await respond_rendered(broker, body, media, context, headers,
                                      prefer=prefer)
    entity = await store.get_entity(tenant, entity_id)
    entity = None if entity is None else live(entity)
    if entity is None:
        raise ResourceNotFound(f"entity {entity_id} not found")
    if wanted is not None and not _types(ctx, wanted) & set(entity.get("type", ())):
        raise ResourceNotFound(f"entity {entity_id} has none of the types {wanted}")
    rendered = await render_entities(store, tenant, view, ctx, [entity])
    data: Any = rendered.entities[0]
    if view.join is not None and view.join.flat:
        # 5.7.1.5: flattened, an array (a FeatureCollection in GeoJSON)
        data = rendered.entities
        if media == GEO_JSON:
            data = to_feature_collection(data)
    return await respond(broker, data, media, context, status=203 if rendered.altered else 200,
                         headers=headers, prefer=prefer)


# 5.6.6 Delete Entity
async def delete_entity(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    tenant = await broker.tenant(request)
    mutation = operations.delete_entity(entity_id)
    wanted = request.query.get("type")
    if wanted is not None:
        context = parse_link_context(request.headers.get("Link"))
        ctx = await broker.resolver.active(context)
        mutation = type_gated(ctx, wanted, entity_id, mutation)
    await commit(broker, tenant, entity_id, mutation)
    return web.Response(status=204)


# 5.6.3 Append Entity Attributes
async def append_attrs(request: web.Request) -> web.Response:
    write = await WriteRequest.read(request)
    no_overwrite = "noOverwrite" in write.opts
    mutation = operations.append_attributes(
        write.entity_id, write.fragment(), now_iso(), no_overwrite=no_overwrite
    )
    await write.apply(mutation)
    return await write.attrs_result(mutation)


# 5.6.2 Update Entity Attributes
async def update_attrs(request: web.Request) -> web.Response:
    write = await WriteRequest.read(request, PATCH_MEDIA)
    fragment = write.fragment(allow_null=True)
    mutation = operations.update_attributes(write.entity_id, fragment, now_iso())
    await write.apply(mutation)
    return await write.attrs_result(mutation)


# 5.6.4 Partial Attribute Update
async def patch_attr(request: web.Request) -> web.Response:
    write = await WriteRequest.read(request, PATCH_MEDIA)
    name, fragment = write.attribute(allow_null=True, fragment=True)
    await write.apply(attribute_ops.update_attribute(write.entity_id, name, fragment, now_iso()))
    return await write.no_content()


# 5.6.19 Replace Attribute
async def replace_attr(request: web.Request) -> web.Response:
    write = await WriteRequest.read(request)
    name, instance = write.attribute(allow_null=False)
    await write.apply(attribute_ops.replace_attribute(write.entity_id, name, instance, now_iso()))
    return await write.no_content()


# 5.6.5 Delete Entity Attribute
async def delete_attr(request: web.Request) -> web.Response:
    broker = broker_of(request)
    entity_id = path_entity_id(request)
    context = parse_link_context(request.headers.get("Link"))
    ctx = await broker.resolver.active(context)
    attr = request.match_info["attrId"]
    now = now_iso()
    if attr == "scope":
        # 5.6.5.4: "If the target Attribute is scope, remove the scope Attribute"
        mutation = attribute_ops.delete_scope(entity_id, now)
    else:
        mutation = attribute_ops.delete_attribute(
            entity_id,
            ctx.expand_term(attr),
            now,
            dataset_id=request.query.get("datasetId"),
            delete_all=flag(request, "deleteAll"),
        )
    tenant = await broker.tenant(request)
    gated = type_gated(ctx, request.query.get("type"), entity_id, mutation)
    await commit(broker, tenant, entity_id, gated)
    return web.Response(status=204)


async def missing_entity_id(request: web.Request) -> web.Response:
    """``/entities//attrs...`` (5.6.2.4 to 5.6.5.4): "If the Entity ID is not present
    ... BadRequestData"."""
    raise BadRequestData("the entity id is missing from the path")


# 5.6.17 Merge Entity
async def merge_entity(request: web.Request) -> web.Response:
    write = await WriteRequest.read(request, PATCH_MEDIA)
    fragment = write.fragment(allow_null=True, merge=True)
    await write.apply(operations.merge_entity(write.entity_id, fragment, now_iso()))
    return await write.no_content()


# 5.6.18 Replace Entity
async def replace_entity(request: web.Request) -> web.Response:
    write = await WriteRequest.read(request)
    data = _object(write.body.data)
    if "id" not in data and "@id" not in data:
        data = {"id": write.entity_id, **data}
    entity = write.entity(data)
    if entity["id"] != write.entity_id:
        raise BadRequestData(
            f"the body's id {entity['id']!r} differs from the path's {write.entity_id!r}"
        )
    await write.apply(operations.replace_entity(write.entity_id, entity, now_iso()))
    return await write.no_content()


def setup(app: web.Application) -> None:
    one = ENTITIES + "/{entityId}"
    attr = one + "/attrs/{attrId}"
    add_route(app, "POST", ENTITIES, create_entity, "createEntity")
    add_route(app, "GET", one, retrieve_entity, "retrieveEntity")
    add_route(app, "DELETE", one, delete_entity, "deleteEntity")
    add_route(app, "PATCH", one, merge_entity, "mergeEntity")
    add_route(app, "PUT", one, replace_entity, "replaceEntity")
    add_route(app, "POST", one + "/attrs", append_attrs, "appendAttributes")
    add_route(app, "PATCH", one + "/attrs", update_attrs, "updateAttributes")
    add_route(app, "PATCH", attr, patch_attr, "updateAttribute")
    add_route(app, "PUT", attr, replace_attr, "replaceAttribute")
    add_route(app, "DELETE", attr, delete_attr, "deleteAttribute")
    # the entity id left out: /entities//attrs/... (PATCH or PUT of /entities/: app.py)
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        add_route(app, method, ENTITIES + "//attrs", missing_entity_id)
        add_route(app, method, ENTITIES + "//attrs/{attrId}", missing_entity_id)
