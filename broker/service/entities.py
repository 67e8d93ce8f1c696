"""Clauses 5.6 and 5.7.1 of ETSI GS CIM 009: entities and their attributes, one function each.

Every write builds a pure mutation (``ngsi_ld.operations``,
``ngsi_ld.attribute_ops``) and commits it through :meth:`Service.commit`; a
``type`` selector (4.17) gates it to entities of the types it selects.  A
retrieval reads the versioned path when the store offers one and the view
renders entities one by one (no join, no version amendment): nothing committed
since the entity was last read means no store read at all.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any
from urllib.parse import quote

from broker.service import entitymaps
from broker.service.answers import (
    entity_reply,
    inline_context,
    link_only,
    live,
    render_cached,
    rendered_at,
    rendered_reply,
)
from broker.service.core import Call, Service
from broker.service.distributed import distributed_write
from broker.service.linked import render_entities
from broker.service.ports import LOCAL, Plan
from broker.service.reply import Reply, empty, json_reply
from ngsi_ld import attribute_ops, operations
from ngsi_ld.attributes import parse_attribute
from ngsi_ld.bodies import GEO_JSON, JSON, LD_JSON, Body
from ngsi_ld.entity import parse_fragment
from ngsi_ld.errors import BadRequestData, InvalidRequest, NgsiLdError, ResourceNotFound
from ngsi_ld.federation import LOCAL as LOCAL_SOURCE
from ngsi_ld.headers import negotiate, parse_link_context
from ngsi_ld.identifiers import is_entity_id
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity, Instance, Mutation
from ngsi_ld.operations import KEEPS_CURRENT, keeps_current
from ngsi_ld.params import flag, options_of
from ngsi_ld.prefer import version_applied
from ngsi_ld.query import EntityQuery, matches_types, parse_type_expr, resolve_names
from ngsi_ld.representation import to_feature_collection
from ngsi_ld.shapes import parse_expanded
from ngsi_ld.timeutil import now_iso
from ngsi_ld.view import view_of, wants_key_values
from storage.versioned import versioned

__all__ = [
    "ENTITIES", "READ_MEDIA", "append_attrs", "attribute_of", "attrs_result", "check_entity_id",
    "create_entity", "created", "delete_attr", "delete_entity", "fragment_of", "location_of",
    "merge_entity", "no_content", "object_of", "patch_attr", "replace_attr", "replace_entity",
    "retrieve_entity", "type_gated", "unlinked", "update_attrs",
]

ENTITIES = "/ngsi-ld/v1/entities"
READ_MEDIA = (JSON, LD_JSON, GEO_JSON)
WRITE_OPTIONS = frozenset({"keyValues", "simplified", "concise", "normalized", "noOverwrite"})


# The ids of the entities read lately: a path's id is checked by a regular expression
# once, not at every read of the entity.
_checked_id = lru_cache(maxsize=4096)(is_entity_id)


#: the characters ``quote(..., safe=":")`` leaves as they are
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~:-]*")


def _quoted(entity_id: str) -> str:
    """``entity_id`` percent-encoded for a path (``:`` kept), as ``quote`` does;
    most ids need no encoding, and are not walked character by character."""
    return entity_id if _UNQUOTED.fullmatch(entity_id) else quote(entity_id, safe=":")


def check_entity_id(entity_id: str) -> str:
    """``entity_id`` if it is an absolute URI (clause 4.5.2), else BadRequestData."""
    if not _checked_id(entity_id):
        raise BadRequestData(f"entity id {entity_id!r} is not an absolute URI")
    return entity_id


def object_of(data: Any) -> Any:
    """An entity or fragment body is a JSON object: anything else is a malformed request."""
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def _types(ctx: ActiveContext, wanted: str) -> set[str]:
    """The expanded names of a ``type`` query parameter (a comma-separated list)."""
    return {ctx.expand_term(t.strip()) for t in wanted.split(",") if t.strip()}


def type_gated(
    ctx: ActiveContext, selector: str | None, entity_id: str, mutation: Mutation
) -> Mutation:
    """``mutation`` applied only to an entity of the types ``selector`` selects (clause
    4.17); another one is ResourceNotFound, as if it did not exist (5.6.2.4 to 5.6.6.4)."""
    if selector is None:
        return mutation
    expr = resolve_names(parse_type_expr(selector), ctx.expand_term)

    def gated(current: Entity | None) -> Entity | None:
        if current is not None and not matches_types(expr, current.get("type") or []):
            raise ResourceNotFound(f"entity {entity_id} is not of the type {selector}")
        return mutation(current)

    return keeps_current(gated) if getattr(mutation, KEEPS_CURRENT, False) else gated


def _leaving(mutation: Mutation, names: frozenset[str]) -> Mutation:
    """``mutation`` with the attributes ``names`` left as they were (absent if they were)."""

    def restricted(current: Entity | None) -> Entity | None:
        after = mutation(current)
        if after is None or after is current:
            return after
        attrs = dict(after.get("attrs") or {})
        before = (current or {}).get("attrs") or {}
        for name in names:
            if name in before:
                attrs[name] = before[name]
            else:
                attrs.pop(name, None)
        return {**after, "attrs": attrs}

    return keeps_current(restricted) if getattr(mutation, KEEPS_CURRENT, False) else restricted


def fragment_of(ctx: ActiveContext, data: Any, entity_id: str, *, key_values: bool,
                allow_null: bool = False, merge: bool = False) -> Entity:
    """The body ``data`` of a write to entity ``entity_id`` as attributes, validated and
    expanded (an internal-form fragment)."""
    parsed = parse_fragment(object_of(data), key_values=key_values, allow_null=allow_null,
                            merge=merge)
    if parsed.id is not None and parsed.id != entity_id:
        raise BadRequestData(
            f"the body's id {parsed.id!r} differs from the path's {entity_id!r}"
        )
    fragment: Entity = {"attrs": parsed.attrs}
    if parsed.type is not None:
        fragment["type"] = parsed.type
    if parsed.scope is not None:
        fragment["scope"] = parsed.scope
    if parsed.expires_at is not None:
        fragment["expiresAt"] = parsed.expires_at
    return ctx.expand_entity(fragment)


def attribute_of(ctx: ActiveContext, data: Any, name: str, *, key_values: bool,
                 allow_null: bool, fragment: bool = False) -> tuple[str, Instance]:
    """The body ``data`` as the one instance of attribute ``name``: (expanded name,
    instance).

    ``fragment``: the body is an Attribute Fragment (5.6.4), type and main
    member optional.
    """
    if name == "scope":
        # 5.6.4.4 and 5.6.19.4: scope is not an attribute these operations change
        raise BadRequestData("scope cannot be updated as an attribute; update the entity")
    if isinstance(data, dict) and "@context" in data:
        data = {k: v for k, v in data.items() if k != "@context"}  # the body's, not the attr's
    instances = parse_attribute(
        name, data, key_values=key_values, allow_null=allow_null, fragment=fragment
    )
    if len(instances) != 1:
        raise BadRequestData("a single attribute instance is expected in the body")
    ((iri, (instance,)),) = ctx.expand_entity({"attrs": {name: instances}})["attrs"].items()
    return iri, instance


@dataclass(slots=True)
class _Write:
    """What every write of clause 5.6 starts from: the parsed body and its context."""

    service: Service
    call: Call
    entity_id: str
    body: Body
    opts: set[str]
    ctx: ActiveContext
    #: the sources' plan of this write (distributed operations), and whether it is local
    plan: Plan = LOCAL
    local: bool = True
    #: the local part's error when sources took parts of the write (folded, not raised)
    failed: NgsiLdError | None = None

    @classmethod
    async def of(cls, service: Service, call: Call, entity_id: str, body: Body) -> _Write:
        opts = options_of(call.params, WRITE_OPTIONS)
        ctx = call.active = await service.resolver.active(body.client_context)
        return cls(service, call, entity_id, body, opts, ctx)

    @property
    def key_values(self) -> bool:
        return wants_key_values(self.opts)

    def fragment(self, *, allow_null: bool = False, merge: bool = False) -> Entity:
        """The body as attributes, validated and expanded (an internal-form fragment)."""
        return fragment_of(self.ctx, self.body.data, self.entity_id, key_values=self.key_values,
                           allow_null=allow_null, merge=merge)

    def entity(self, data: Any) -> Entity:
        """A whole entity body, validated and expanded."""
        # the template of its shape where one was compiled (ngsi_ld.shapes)
        return parse_expanded(self.ctx, object_of(data), key_values=self.key_values)

    def attribute(self, name: str, *, allow_null: bool,
                  fragment: bool = False) -> tuple[str, Instance]:
        """The body as the one instance of attribute ``name``: (expanded name, instance)."""
        return attribute_of(self.ctx, self.body.data, name, key_values=self.key_values,
                            allow_null=allow_null, fragment=fragment)

    async def apply(self, operation: str, mutation: Mutation, *, create: bool = False,
                    write: Entity | None = None) -> Sequence[Any] | None:
        """Commit ``mutation``; with a ``type`` selector (4.17) the entity must be of the
        types it selects.  Registered sources (distributed operations) the plan
        names get the write too (their parts are returned, None without
        sources); the local write happens unless the plan says only the sources
        hold the entity."""
        service = self.service
        tenant = await service.tenant(self.call, create=create)
        sources = service.sources
        parts: Sequence[Any] | None = None
        if sources.serves(tenant):
            self.plan = sources.plan(tenant, operation, EntityQuery(ids=[self.entity_id]),
                                     self.call, write)
            if self.plan.remote:
                parts = await sources.forward(tenant, operation, self.entity_id,
                                              self.body.data, self.plan, self.call)
            if not self.plan.local:
                self.local = False
                return parts
        kept = self.plan.local_attrs
        if kept is not None and write is not None:
            others = frozenset(write.get("attrs") or {}) - kept
            if others:  # 4.3.6.3: what exclusive or redirect sources hold is not written here
                mutation = _leaving(mutation, others)
        gated = type_gated(self.ctx, self.call.params.get("type"), self.entity_id, mutation)
        try:
            await service.commit(tenant, self.entity_id, gated)
        except NgsiLdError as exc:
            if not parts:
                raise
            self.failed = exc  # one part of several: 5.6.x.4 folds it into the outcome
        return parts

    async def answer(self, reply: Reply | Callable[[], Awaitable[Reply]],
                     parts: Sequence[Any] | None) -> Reply:
        """The local write's reply, folded with the sources' parts when some answered."""
        if self.failed is not None:
            error = self.failed
            local: Reply | None = json_reply(error.to_problem(), status=error.status)
        elif isinstance(reply, Reply):
            local = reply
        else:
            local = await reply()
        if parts is None:
            assert local is not None
            return local
        return self.service.sources.outcome(self.plan, local if self.local else None, parts)

    async def no_content(self) -> Reply:
        return await no_content(self.service, self.body.client_context,
                                self.service.tenant_named(self.call))

    async def attrs_result(self, mutation: operations.AttrsMutation) -> Reply:
        return await attrs_result(self.service, self.body.client_context,
                                  self.service.tenant_named(self.call), mutation)


def unlinked(client_context: Any, status: int, headers: dict[str, str] | None = None,
             ) -> Reply | None:
    """The bodiless reply of a write whose request carried no inline @context: nothing to
    host and link, answered without an await (every write: issue 19); else None."""
    if inline_context(client_context):
        return None
    return Reply(status) if headers is None else Reply(status, headers=headers)


async def no_content(service: Service, client_context: Any, tenant: str) -> Reply:
    """204, linking the request's inline @context (hosted for ``tenant``) if it had one."""
    return unlinked(client_context, 204) \
        or empty(204, await link_only(service, client_context, tenant))


async def attrs_result(service: Service, client_context: Any, tenant: str,
                       mutation: operations.AttrsMutation) -> Reply:
    """204 when every attribute was written, else 207 with the UpdateResult (5.2.18)."""
    result = mutation.result
    if not result.not_updated:
        return await no_content(service, client_context, tenant)
    # attribute names fully qualified, as the store keeps them (what the ETSI
    # test purposes of 5.6.3 compare them with)
    headers = await link_only(service, client_context, tenant)
    return json_reply(result.to_dict(), status=207, headers=headers)


def location_of(entity_id: str) -> dict[str, str]:
    """The Location header of the entity ``entity_id`` created (5.6.1.4)."""
    return {"Location": f"{ENTITIES}/{_quoted(entity_id)}"}


async def created(service: Service, entity_id: str, client_context: Any, tenant: str) -> Reply:
    """201 with the new entity's Location, linking the request's inline @context (hosted
    for ``tenant``) if it had one (5.6.1.4)."""
    return unlinked(client_context, 201, location_of(entity_id)) or empty(
        201, {**location_of(entity_id), **await link_only(service, client_context, tenant)})


# 5.6.1 Create Entity
async def create_entity(service: Service, call: Call, body: Body) -> Reply:
    write = await _Write.of(service, call, "", body)
    entity = write.entity(body.data)
    write.entity_id = entity["id"]
    # the parsed, expanded entity is this write's own: stamped without a copy
    parts = await write.apply("createEntity",
                              operations.create_entity(entity, now_iso(), owned=True),
                              create=True, write=entity)
    reply = await created(service, entity["id"], body.client_context, service.tenant_named(call))
    return await write.answer(reply, parts)


# 5.7.1 Retrieve Entity
async def retrieve_entity(service: Service, call: Call, entity_id: str) -> Reply:
    media = negotiate(call.accept, READ_MEDIA)
    client_context = parse_link_context(call.link)
    ctx = call.active = await service.resolver.active(client_context)
    view = view_of(call.params, ctx, media, call.prefer, must_match=True)
    prefer = call.prefer  # 6.3.6: GeoJSON @context placement
    tenant = await service.tenant(call, read=True)
    wanted = call.params.get("type")
    store = service.store
    reads = versioned(store)
    headers = version_applied(prefer)
    if (wanted is None and reads is not None and view.plain and not service.sources.serves(tenant)
            and not entitymaps.wants_map(call)):
        # Nothing committed since this entity was last read: its version is known
        # and its rendering likely cached, no store read needed.
        data_version = store.data_version(tenant)
        if data_version is not None:
            known = service.caches.versions.get(tenant, entity_id, data_version)
            if known is not None:
                body = rendered_at(service, tenant, entity_id, known, view, ctx)
                if body is not None:
                    # a cached rendering is never of a transient entity (4.22)
                    call.reusable = (tenant, data_version, client_context)
                    return await rendered_reply(service, body, media, client_context, headers,
                                                prefer=prefer, tenant=service.tenant_named(call))
        item = await reads.read_versioned(tenant, entity_id)
        if item is not None and data_version is not None:
            service.caches.versions.put(tenant, entity_id, data_version, item.version)
        body = None if item is None else render_cached(service, tenant, view, ctx, item)
        if body is None:
            raise ResourceNotFound(f"entity {entity_id} not found")
        return await rendered_reply(service, body, media, client_context, headers, prefer=prefer,
                                    tenant=service.tenant_named(call))
    holders: dict[str, list[str]] = {}
    entity = await _read_entity(service, call, tenant, entity_id, holders)
    if entity is None:
        raise ResourceNotFound(f"entity {entity_id} not found")
    if entitymaps.wants_map(call):  # 5.7.1.4
        location = await entitymaps.retrieval_map(service, call, tenant, holders)
        if location is not None:
            headers[entitymaps.HEADER] = location
    if wanted is not None and not _types(ctx, wanted) & set(entity.get("type", ())):
        raise ResourceNotFound(f"entity {entity_id} has none of the types {wanted}")
    rendered = await render_entities(store, tenant, view, ctx, [entity])
    data: Any = rendered.entities[0]
    if view.join is not None and view.join.flat:
        # 5.7.1.5: flattened, an array (a FeatureCollection in GeoJSON)
        data = rendered.entities
        if media == GEO_JSON:
            data = to_feature_collection(data)
    return await entity_reply(service, data, media, client_context,
                              status=203 if rendered.altered else 200, headers=headers,
                              prefer=prefer, tenant=service.tenant_named(call))


async def _read_entity(service: Service, call: Call, tenant: str, entity_id: str,
                       holders: dict[str, list[str]] | None = None) -> Entity | None:
    """The entity as valid now, merged with what the registered sources hold of it;
    ``holders`` is told who holds it (``@none``: this broker), for an Entity map."""
    entity = await service.store.get_entity(tenant, entity_id)
    entity = None if entity is None else live(entity)
    if holders is not None and entity is not None:
        holders[LOCAL_SOURCE] = [entity_id]
    sources = service.sources
    if sources.serves(tenant):  # distributed operations: local, remote, or both, merged
        query = EntityQuery(ids=[entity_id])
        plan = sources.plan(tenant, "retrieveEntity", query, call)
        if plan.remote:
            local = [entity] if entity is not None and plan.local else []
            answers = await sources.fetch(tenant, "retrieveEntity", query, plan, call, local)
            merged = sources.merge(plan, local, answers)
            if holders is not None:
                holders.update(sources.holders(answers))
            entity = merged[0] if merged else None
    return entity


# 5.6.6 Delete Entity
async def delete_entity(service: Service, call: Call, entity_id: str) -> Reply:
    tenant = await service.tenant(call)
    mutation = operations.delete_entity(entity_id)
    wanted = call.params.get("type")
    if wanted is not None:
        ctx = call.active = await service.resolver.active(parse_link_context(call.link))
        mutation = type_gated(ctx, wanted, entity_id, mutation)
    return await _distributed(service, call, tenant, "deleteEntity", entity_id, None, mutation)


async def _distributed(service: Service, call: Call, tenant: str, operation: str,
                       entity_id: str, write: Entity | None, mutation: Mutation) -> Reply:
    """A write without a body (the deletions): committed here, and forwarded to the
    registered sources the plan names (4.3.6), the parts folded into one reply."""

    async def local(plan: Plan) -> Reply:
        await service.commit(tenant, entity_id, mutation)
        return empty(204)

    return await distributed_write(service, call, tenant, operation, entity_id, write, None,
                                   local)


# 5.6.3 Append Entity Attributes
async def append_attrs(service: Service, call: Call, entity_id: str, body: Body) -> Reply:
    write = await _Write.of(service, call, entity_id, body)
    no_overwrite = "noOverwrite" in write.opts
    fragment = write.fragment()
    mutation = operations.append_attributes(
        entity_id, fragment, now_iso(), no_overwrite=no_overwrite
    )
    parts = await write.apply("appendAttributes", mutation, write=fragment)
    return await write.answer(partial(write.attrs_result, mutation), parts)


# 5.6.2 Update Entity Attributes
async def update_attrs(service: Service, call: Call, entity_id: str, body: Body) -> Reply:
    write = await _Write.of(service, call, entity_id, body)
    fragment = write.fragment(allow_null=True)
    mutation = operations.update_attributes(entity_id, fragment, now_iso())
    parts = await write.apply("updateAttributes", mutation, write=fragment)
    return await write.answer(partial(write.attrs_result, mutation), parts)


# 5.6.4 Partial Attribute Update
async def patch_attr(service: Service, call: Call, entity_id: str, attr: str,
                     body: Body) -> Reply:
    write = await _Write.of(service, call, entity_id, body)
    name, fragment = write.attribute(attr, allow_null=True, fragment=True)
    mutation = attribute_ops.update_attribute(entity_id, name, fragment, now_iso())
    parts = await write.apply("updateAttribute", mutation, write={"attrs": {name: [fragment]}})
    return await write.answer(write.no_content, parts)


# 5.6.19 Replace Attribute
async def replace_attr(service: Service, call: Call, entity_id: str, attr: str,
                       body: Body) -> Reply:
    write = await _Write.of(service, call, entity_id, body)
    name, instance = write.attribute(attr, allow_null=False)
    mutation = attribute_ops.replace_attribute(entity_id, name, instance, now_iso())
    parts = await write.apply("replaceAttribute", mutation, write={"attrs": {name: [instance]}})
    return await write.answer(write.no_content, parts)


# 5.6.5 Delete Entity Attribute
async def delete_attr(service: Service, call: Call, entity_id: str, attr: str) -> Reply:
    ctx = call.active = await service.resolver.active(parse_link_context(call.link))
    now = now_iso()
    params = call.params
    if attr == "scope":
        # 5.6.5.4: "If the target Attribute is scope, remove the scope Attribute"
        mutation = attribute_ops.delete_scope(entity_id, now)
    else:
        mutation = attribute_ops.delete_attribute(
            entity_id, ctx.expand_term(attr), now, dataset_id=params.get("datasetId"),
            delete_all=flag(params, "deleteAll"),
        )
    tenant = await service.tenant(call)
    gated = type_gated(ctx, params.get("type"), entity_id, mutation)
    written: Entity = {"attrs": {ctx.expand_term(attr): []}}
    return await _distributed(service, call, tenant, "deleteAttribute", entity_id, written,
                              gated)


# 5.6.17 Merge Entity
async def merge_entity(service: Service, call: Call, entity_id: str, body: Body) -> Reply:
    write = await _Write.of(service, call, entity_id, body)
    fragment = write.fragment(allow_null=True, merge=True)
    mutation = operations.merge_entity(entity_id, fragment, now_iso())
    parts = await write.apply("mergeEntity", mutation, write=fragment)
    return await write.answer(write.no_content, parts)


# 5.6.18 Replace Entity
async def replace_entity(service: Service, call: Call, entity_id: str, body: Body) -> Reply:
    write = await _Write.of(service, call, entity_id, body)
    data = object_of(body.data)
    if "id" not in data and "@id" not in data:
        data = {"id": entity_id, **data}
    entity = write.entity(data)
    if entity["id"] != entity_id:
        raise BadRequestData(
            f"the body's id {entity['id']!r} differs from the path's {entity_id!r}"
        )
    mutation = operations.replace_entity(entity_id, entity, now_iso())
    parts = await write.apply("replaceEntity", mutation, write=entity)
    return await write.answer(write.no_content, parts)


#: the signature of the operations that write a body to one entity
EntityWrite = Callable[[Service, Call, str, Body], Awaitable[Reply]]
#: the signature of the operations that write a body to one attribute
AttributeWrite = Callable[[Service, Call, str, str, Body], Awaitable[Reply]]
