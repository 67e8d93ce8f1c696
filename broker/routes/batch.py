"""Clauses 5.6.7 to 5.6.10 and 5.6.20 of ETSI GS CIM 009 v1.8: batch entity operations.

Each entity is applied whole or not at all; the batch is one store call
(``modify_many``, one transaction where the store allows it), in array order:
an id that appears twice is written twice, so in a create batch the second
copy fails with AlreadyExists and in an upsert the later copy wins (as Orion-LD).  Success of every
entity answers 201 or 204; otherwise 207 with a BatchOperationResult
(clause 5.2.16: ``success`` ids, ``errors`` with ``entityId`` and a ProblemDetails).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from broker.app import Broker, add_route, broker_of
from broker.http import LD_JSON, json_response, options, read_body
from broker.routes.common import commit_many, wants_key_values
from broker.storage.base import Mutation, Outcome
from ngsi_ld import batch
from ngsi_ld.entity import parse_entity
from ngsi_ld.errors import BadRequestData, NgsiLdError
from ngsi_ld.timeutil import now_iso

BASE = "/ngsi-ld/v1/entityOperations"


def _error(entity_id: str, error: NgsiLdError) -> dict[str, Any]:
    return {"entityId": entity_id, "error": error.to_problem()}


def _claimed_id(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        return item["id"]
    return "urn:ngsi-ld:unknown"


async def _parse_all(
    broker: Broker,
    request: web.Request,
    *,
    require_type: bool,
    key_values: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """Parse and expand every entity of the body; bad ones become errors, not a failed batch."""
    body = await read_body(request, broker.settings.max_body_size)
    if not isinstance(body.data, list):
        raise BadRequestData("the body of a batch operation must be a JSON array of entities")
    if not body.data:
        raise BadRequestData("a batch must contain at least one entity")
    if len(body.data) > broker.settings.max_batch_size:
        raise BadRequestData(
            f"batch of {len(body.data)} entities exceeds the maximum of "
            f"{broker.settings.max_batch_size}"
        )
    parsed: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    shared = None if body.media_type == LD_JSON else await broker.resolver.active(body.context)
    for item in body.data:
        try:
            if body.media_type == LD_JSON:
                item = dict(item)
                ctx = await broker.resolver.active(item.pop("@context"))
            else:
                assert shared is not None
                ctx = shared
            entity = parse_entity(item, key_values=key_values, require_type=require_type)
            parsed.append(ctx.expand_entity(entity))
        except NgsiLdError as exc:
            errors.append(_error(_claimed_id(item), exc))
    return parsed, errors, body.context


async def _apply(
    broker: Broker,
    tenant: str,
    entities: list[Any],
    build: Callable[[Any], Mutation],
    id_of: Callable[[Any], str] = lambda e: e["id"],
) -> list[Outcome]:
    mutations: list[tuple[str, Mutation]] = []
    failed: list[Outcome] = []
    for entity in entities:
        try:
            mutations.append((id_of(entity), build(entity)))
        except NgsiLdError as exc:
            failed.append(Outcome(entity_id=id_of(entity), error=exc))
    return failed + await commit_many(broker, tenant, mutations)


def _result(
    outcomes: list[Outcome],
    errors: list[dict[str, Any]],
    *,
    all_ok_status: int,
    body_when_ok: list[str] | None = None,
) -> web.Response:
    success = [o.entity_id for o in outcomes if o.error is None]
    errors = errors + [_error(o.entity_id, o.error) for o in outcomes if o.error is not None]
    if errors:
        return json_response({"success": success, "errors": errors}, status=207)
    if all_ok_status == 201:
        return json_response(body_when_ok if body_when_ok is not None else success, status=201)
    return web.Response(status=all_ok_status)


def _options(request: web.Request, allowed: frozenset[str]) -> set[str]:
    return options(request, allowed | {"keyValues", "simplified", "normalized", "concise"})


# 5.6.7 Batch Entity Creation
async def batch_create(request: web.Request) -> web.Response:
    broker = broker_of(request)
    opts = _options(request, frozenset())
    entities, errors, _ = await _parse_all(
        broker, request, require_type=True, key_values=wants_key_values(opts)
    )
    tenant = await broker.tenant(request, create=True)
    now = now_iso()
    outcomes = await _apply(broker, tenant, entities, lambda e: batch.batch_create_mutation(e, now))
    return _result(outcomes, errors, all_ok_status=201)


# 5.6.8 Batch Entity Upsert (options=replace|update)
async def batch_upsert(request: web.Request) -> web.Response:
    broker = broker_of(request)
    opts = _options(request, frozenset({"replace", "update"}))
    if {"replace", "update"} <= opts:
        raise BadRequestData("options replace and update cannot be used together")
    mode = "update" if "update" in opts else "replace"
    entities, errors, _ = await _parse_all(
        broker,
        request,
        require_type=mode == "replace",
        key_values=wants_key_values(opts),
    )
    tenant = await broker.tenant(request, create=True)
    now = now_iso()
    outcomes = await _apply(
        broker, tenant, entities, lambda e: batch.batch_upsert_mutation(e, now, mode)
    )
    created = [
        o.entity_id
        for o in outcomes
        if o.change is not None and o.change.before is None and o.error is None
    ]
    if errors or any(o.error is not None for o in outcomes):
        return _result(outcomes, errors, all_ok_status=204)
    if created:
        return json_response(created, status=201)
    return web.Response(status=204)


# 5.6.9 Batch Entity Update (options=noOverwrite)
async def batch_update(request: web.Request) -> web.Response:
    broker = broker_of(request)
    opts = _options(request, frozenset({"noOverwrite"}))
    entities, errors, _ = await _parse_all(
        broker, request, require_type=False, key_values=wants_key_values(opts)
    )
    tenant = await broker.tenant(request)
    now = now_iso()
    no_overwrite = "noOverwrite" in opts
    outcomes = await _apply(
        broker,
        tenant,
        entities,
        lambda e: batch.batch_update_mutation(e, now, no_overwrite=no_overwrite),
    )
    return _result(outcomes, errors, all_ok_status=204)


# 5.6.20 Batch Entity Merge
async def batch_merge(request: web.Request) -> web.Response:
    broker = broker_of(request)
    opts = _options(request, frozenset())
    entities, errors, _ = await _parse_all(
        broker, request, require_type=False, key_values=wants_key_values(opts)
    )
    tenant = await broker.tenant(request)
    now = now_iso()
    outcomes = await _apply(broker, tenant, entities, lambda e: batch.batch_merge_mutation(e, now))
    return _result(outcomes, errors, all_ok_status=204)


# 5.6.10 Batch Entity Delete
async def batch_delete(request: web.Request) -> web.Response:
    broker = broker_of(request)
    body = await read_body(request, broker.settings.max_body_size)
    ids = body.data
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadRequestData("the body of a batch delete must be a JSON array of entity ids")
    if not ids:
        raise BadRequestData("a batch must contain at least one entity id")
    if len(ids) > broker.settings.max_batch_size:
        raise BadRequestData(
            f"batch of {len(ids)} entities exceeds the maximum of {broker.settings.max_batch_size}"
        )
    tenant = await broker.tenant(request)
    outcomes = await _apply(broker, tenant, ids, batch.batch_delete_mutation, id_of=lambda i: i)
    return _result(outcomes, [], all_ok_status=204)


def setup(app: web.Application) -> None:
    add_route(app, "POST", BASE + "/create", batch_create, "batchCreate")
    add_route(app, "POST", BASE + "/upsert", batch_upsert, "batchUpsert")
    add_route(app, "POST", BASE + "/update", batch_update, "batchUpdate")
    add_route(app, "POST", BASE + "/merge", batch_merge, "batchMerge")
    add_route(app, "POST", BASE + "/delete", batch_delete, "batchDelete")
