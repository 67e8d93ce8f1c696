"""Clauses 5.6.11 to 5.6.16 of ETSI GS CIM 009 v1.9.1: the writes of the temporal API.

The history itself is recorded by every entity write (``Service.commit``); these
operations edit it directly.  A posted temporal representation (5.6.11, 5.6.12)
is parsed and expanded, and its instances upserted into the store's history
together with the current Entity, created or brought up to the latest posted
observations (one :meth:`Service.commit` with ``posted``: one transaction on the
embedded store), *without* recording again (the instances are already history),
so subscriptions hear of it like any write.  The reads are :mod:`broker.service.temporal_reads`.

With ``--temporal off`` (or a store without history) every operation is
OperationNotSupported (501).

Distributed (4.3.6, 5.6.11.4 to 5.6.16.4): each write goes through
:func:`broker.service.distributed.distributed_write`, as the entity deletions
do: forwarded to the registrations supporting its Table 4.20-1 operation
(``upsertTemporal``, ``appendAttrsTemporal``, ``deleteAttrsTemporal``,
``updateAttrInstanceTemporal``, ``deleteAttrInstanceTemporal``,
``deleteTemporal``) that cover its Entity and Attributes; what exclusive and
redirect registrations hold is not written here; the parts folded into one
reply.  The body is checked before anything is forwarded.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import quote

from broker.service.answers import link_only
from broker.service.core import Call, Service
from broker.service.distributed import distributed_write
from broker.service.ports import Plan
from broker.service.reply import Reply, empty
from ngsi_ld import operations
from ngsi_ld.bodies import Body
from ngsi_ld.errors import BadRequestData, NotImplementedOperation, ResourceNotFound
from ngsi_ld.headers import parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity, Mutation
from ngsi_ld.params import flag
from ngsi_ld.temporal import (
    check_instance_id,
    latest_state,
    parse_instance_fragment,
    parse_temporal_attributes,
    parse_temporal_entity,
    patch_instance,
    temporal_history,
    to_micros,
)
from ngsi_ld.timeutil import now_iso
from storage.temporal import TemporalHistory

__all__ = [
    "TEMPORAL", "append_temporal_attrs", "delete_temporal", "delete_temporal_attr",
    "delete_temporal_instance", "history_of", "patch_temporal_instance", "upsert_temporal",
]

TEMPORAL = "/ngsi-ld/v1/temporal/entities"


def history_of(service: Service) -> TemporalHistory:
    """The history the temporal API works on; OperationNotSupported when none is kept."""
    history = service.history
    if history is None:
        raise NotImplementedOperation(
            "the temporal API is off on this broker (--temporal off, or a store without history)"
        )
    return history


def _expanded(ctx: ActiveContext, parsed: dict[str, Any]) -> dict[str, Any]:
    """The parsed temporal body with its names expanded (the Scope instances kept apart:
    their values are scopes, not names)."""
    scope = parsed.pop("scope", None)
    expanded = dict(ctx.expand_entity(parsed))
    if scope is not None:
        expanded["scope"] = scope
    return expanded


def _newer(inst: dict[str, Any], current: list[Any] | None) -> bool:
    """True when the posted latest ``inst`` is more recent than the current instance of
    its datasetId (or there is none)."""
    if not current:
        return True
    dataset_id = inst.get("datasetId")
    same = [c for c in current if isinstance(c, dict) and c.get("datasetId") == dataset_id]
    if not same:
        return True
    was, now = same[0].get("observedAt"), inst.get("observedAt")
    if not isinstance(was, str) or not isinstance(now, str):
        return True
    return to_micros(now) >= to_micros(was)


def _current_state(entity_id: str, latest: dict[str, Any], now: str) -> Mutation:
    """The current Entity a posted temporal representation implies (docs/temporal.md 3.1):
    created from the latest observations, or their newer ones appended."""

    def mutation(current: Entity | None) -> Entity | None:
        if current is None:
            if not latest.get("type"):
                return None
            return operations.create_entity(cast(Entity, latest), now, check_nulls=False)(None)
        attrs = current.get("attrs") or {}
        newer = {name: kept for name, insts in latest["attrs"].items()
                 for kept in [[i for i in insts if _newer(i, attrs.get(name))]] if kept}
        fragment: dict[str, Any] = {"attrs": newer}
        if latest.get("type"):
            fragment["type"] = latest["type"]
        if not newer and not set(fragment.get("type", ())) - set(current.get("type", ())):
            return current
        return operations.append_attributes(entity_id, cast(Entity, fragment), now)(current)

    return mutation


async def _record_posted(service: Service, call: Call, entity_id: str,
                         expanded: dict[str, Any], tenant: str) -> None:
    history = history_of(service)
    now = now_iso()
    posted = temporal_history(expanded, now, history.new_instance_id)
    latest = latest_state(expanded)
    # the posted instances and the current Entity in one write (one transaction on
    # the embedded store; on MongoDB the instances right after the entity)
    await service.commit(tenant, entity_id, _current_state(entity_id, latest, now),
                         record=False, posted=(posted,))


def _kept(expanded: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The part of a posted temporal representation written here: without the Attributes
    exclusive or redirect registrations hold (4.3.6.3, ``plan.local_attrs``)."""
    keep = plan.local_attrs
    if keep is None:
        return expanded
    return {**expanded, "attrs": {name: insts for name, insts in expanded["attrs"].items()
                                  if name in keep}}


def _named(ctx: ActiveContext, attr: str) -> Entity:
    """The write of one Attribute, as the plan of a distributed write reads it."""
    return {"attrs": {ctx.expand_term(attr): []}}


# 5.6.11 Create or Update Temporal Representation of an Entity
async def upsert_temporal(service: Service, call: Call, body: Body) -> Reply:
    """POST /temporal/entities: 201 when the temporal Entity is new, else 204."""
    history = history_of(service)
    ctx = await service.resolver.active(body.client_context)
    parsed = parse_temporal_entity(body.data, require_type=False)
    entity_id = parsed["id"]
    tenant = await service.tenant(call, create=True)
    expanded = _expanded(ctx, parsed)

    async def local(plan: Plan) -> Reply:
        known = await history.temporal_entities(tenant, ids=[entity_id])
        if not known and "type" not in parsed:
            raise BadRequestData(f"Temporal entity {entity_id!r} has no 'type'")
        await _record_posted(service, call, entity_id, _kept(expanded, plan), tenant)
        headers = await link_only(service, body.client_context, service.tenant_named(call))
        if known:
            return empty(204, headers)
        return empty(201, {"Location": f"{TEMPORAL}/{quote(entity_id, safe=':')}", **headers})

    return await distributed_write(service, call, tenant, "upsertTemporal", entity_id,
                                   cast(Entity, expanded), body.data, local)


# 5.6.12 Add Attributes to Temporal Representation of an Entity
async def append_temporal_attrs(service: Service, call: Call, entity_id: str,
                                body: Body) -> Reply:
    """POST /temporal/entities/{id}/attrs: 204; 404 for an unknown temporal Entity."""
    history = history_of(service)
    ctx = await service.resolver.active(body.client_context)
    parsed = parse_temporal_attributes(body.data)
    tenant = await service.tenant(call)
    parsed["id"] = entity_id
    expanded = _expanded(ctx, parsed)

    async def local(plan: Plan) -> Reply:
        if not await history.temporal_entities(tenant, ids=[entity_id]):
            raise ResourceNotFound(f"temporal entity {entity_id} not found")
        await _record_posted(service, call, entity_id, _kept(expanded, plan), tenant)
        return empty(204, await link_only(service, body.client_context,
                                          service.tenant_named(call)))

    return await distributed_write(service, call, tenant, "appendAttrsTemporal", entity_id,
                                   cast(Entity, expanded), body.data, local)


def _gone(current: Entity | None) -> Entity | None:
    return None


# 5.6.16 Delete Temporal Representation of an Entity
async def delete_temporal(service: Service, call: Call, entity_id: str) -> Reply:
    """The Entity's temporal evolution and, as a temporal POST creates it, its current
    state (what a user of Stellio's temporal API expects: nothing of it is left)."""
    history = history_of(service)
    tenant = await service.tenant(call)

    async def local(plan: Plan) -> Reply:
        if not await history.delete_history(tenant, entity_id):
            raise ResourceNotFound(f"temporal entity {entity_id} not found")
        await service.commit(tenant, entity_id, _gone, record=False)
        return empty(204)

    return await distributed_write(service, call, tenant, "deleteTemporal", entity_id, None,
                                   None, local)


# 5.6.13 Delete Attribute from Temporal Representation of an Entity
async def delete_temporal_attr(service: Service, call: Call, entity_id: str,
                               attr: str) -> Reply:
    history = history_of(service)
    tenant = await service.tenant(call)
    ctx = await service.resolver.active(parse_link_context(call.link))
    params = call.params

    async def local(plan: Plan) -> Reply:
        if not await history.temporal_entities(tenant, ids=[entity_id]):
            raise ResourceNotFound(f"temporal entity {entity_id} not found")
        removed = await history.delete_history_attribute(
            tenant, entity_id, ctx.expand_term(attr), params.get("datasetId"),
            flag(params, "deleteAll"))
        if not removed:
            raise ResourceNotFound(f"temporal entity {entity_id} has no attribute {attr}")
        return empty(204)

    return await distributed_write(service, call, tenant, "deleteAttrsTemporal", entity_id,
                                   _named(ctx, attr), None, local)


async def _instance_target(service: Service, call: Call, entity_id: str, attr: str,
                           instance_id: str) -> tuple[TemporalHistory, str, str, ActiveContext]:
    history = history_of(service)
    check_instance_id(instance_id)
    tenant = await service.tenant(call)
    ctx = await service.resolver.active(parse_link_context(call.link))
    return history, tenant, ctx.expand_term(attr), ctx


# 5.6.14 Partial Update Attribute instance in Temporal Representation of an Entity
async def patch_temporal_instance(service: Service, call: Call, entity_id: str, attr: str,
                                  instance_id: str, body: Body) -> Reply:
    history, tenant, name, link_ctx = await _instance_target(service, call, entity_id, attr,
                                                              instance_id)
    ctx = await service.resolver.active(body.client_context)
    fragment = parse_instance_fragment(body.data)
    ((_, (expanded,)),) = ctx.expand_entity({"attrs": {"instance": [fragment]}})[
        "attrs"].items()

    async def local(plan: Plan) -> Reply:
        stored = await history.history_instance(tenant, entity_id, name, instance_id)
        if stored is None:
            raise ResourceNotFound(
                f"attribute {attr} of {entity_id} has no instance {instance_id}")
        await history.replace_history_instance(tenant, entity_id,
                                               patch_instance(stored, expanded, now_iso()))
        return empty(204)

    return await distributed_write(service, call, tenant, "updateAttrsTemporal", entity_id,
                                   _named(link_ctx, attr), body.data, local)


# 5.6.15 Delete Attribute instance from Temporal Representation of an Entity
async def delete_temporal_instance(service: Service, call: Call, entity_id: str, attr: str,
                                   instance_id: str) -> Reply:
    history, tenant, name, ctx = await _instance_target(service, call, entity_id, attr,
                                                        instance_id)

    async def local(plan: Plan) -> Reply:
        if not await history.delete_history_instance(tenant, entity_id, name, instance_id):
            raise ResourceNotFound(
                f"attribute {attr} of {entity_id} has no instance {instance_id}")
        return empty(204)

    return await distributed_write(service, call, tenant, "deleteAttrInstanceTemporal",
                                   entity_id, _named(ctx, attr), None, local)
