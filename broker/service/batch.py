"""Clauses 5.6.7 to 5.6.10 and 5.6.20 of ETSI GS CIM 009 v1.8: batch entity operations.

Each entity is applied whole or not at all; the batch is one store call
(``modify_many``, one transaction where the store allows it), in array order:
an id that appears twice is written twice, so in a create batch the second
copy fails with AlreadyExists and in an upsert the later copy wins (as Orion-LD).
Success of every entity answers 201 or 204; otherwise 207 with a BatchOperationResult
(clause 5.2.16: ``success`` ids, ``errors`` with ``entityId`` and a ProblemDetails).

A batch's bytes are read first; it is decoded, parsed and written holding a slot
of ``service.batch_gate`` (gate.py), so that the batches waiting for the store's
writer wait as bytes.  A body decoded here from its bytes lets each element go as
soon as it is parsed (issue 19): the element is then freed while it is still in
the CPU's caches, and the next element's entity is made in the memory it leaves,
rather than the whole decoded body (~1.5 MB for 100 Streetlights) freed cold after
the write.  The elements as sent are needed again only where Context Sources
serve the tenant (4.3.6); the body is then decoded again from its bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from broker.service.core import Call, Service
from broker.service.gate import Slot
from broker.service.ports import BatchParts
from broker.service.reply import Reply, empty, json_reply
from ngsi_ld import batch
from ngsi_ld.bodies import LD_JSON, Body, item_context
from ngsi_ld.errors import BadRequestData, NgsiLdError, ResourceNotFound
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity, Mutation
from ngsi_ld.operations import AttrsMutation
from ngsi_ld.params import options_of
from ngsi_ld.shapes import parse_checked
from ngsi_ld.timeutil import now_iso
from ngsi_ld.view import wants_key_values
from storage.base import Outcome

__all__ = [
    "BodySource", "batch_create", "batch_delete", "batch_merge", "batch_update", "batch_upsert",
]

#: the body, or how to read it: the options are checked before its bytes are read
#: (awaited), which give how to decode it (called once its batch's slot is taken)
BodySource = Body | Callable[[], Awaitable[Callable[[], Body]]]


class _Parsed(NamedTuple):
    """One element of a batch, parsed and expanded."""

    entity: Entity
    ctx: ActiveContext
    place: int  # where the element is in the body's array
    null_free: bool  # known to be free of the NGSI-LD Null (shapes.parse_checked)


class _Decoder(NamedTuple):
    """How to decode a batch's body, and whether each call decodes it afresh (from its
    bytes: the elements of what it gives may be let go as they are parsed) or gives
    the same body again (one given decoded)."""

    decode: Callable[[], Body]
    fresh: bool


async def _received(source: BodySource) -> _Decoder:
    """How to decode the body, once its bytes arrived."""
    if isinstance(source, Body):
        return _Decoder(lambda: source, False)
    return _Decoder(await source(), True)


def _error(entity_id: str, error: NgsiLdError) -> dict[str, Any]:
    return {"entityId": entity_id, "error": error.to_problem()}


def _id_of(parsed: _Parsed) -> str:
    return parsed.entity["id"]


def _claimed_id(item: Any) -> str:
    claimed = item.get("id") if isinstance(item, dict) else None
    return claimed if isinstance(claimed, str) else "urn:ngsi-ld:unknown"


async def _parse_all(
    service: Service,
    body: Body,
    *,
    require_type: bool,
    key_values: bool,
    consume: bool = False,
) -> tuple[list[_Parsed], list[dict[str, Any]]]:
    """Parse and expand every entity of the body, each with its @context and its place
    in the body; an element that is not valid becomes an error of its own, not a
    failed batch (5.6.7.4).  ``consume``: the body's array is this call's to empty,
    each element let go once parsed (see the module docstring)."""
    items = batch.check_items(body.data, service.settings.max_batch_size)
    parsed: list[_Parsed] = []
    errors: list[dict[str, Any]] = []
    shared = None
    if body.media_type != LD_JSON:
        shared = await service.resolver.active(body.client_context)
    for place, item in enumerate(items):
        if consume:
            items[place] = None
        try:
            # 6.3.5 applied element by element: its own @context, or the Link header's
            own, client_context = item_context(body.media_type, item)
            if own:
                ctx = await service.resolver.active(client_context)
            else:
                assert shared is not None
                ctx = shared
            if isinstance(item, dict) and "@context" in item:
                item = {k: v for k, v in item.items() if k != "@context"}
            # elements of one shape: all but the first filled in by its template
            entity, null_free = parse_checked(ctx, item, key_values=key_values,
                                              require_type=require_type)
            parsed.append(_Parsed(entity, ctx, place, null_free))
        except NgsiLdError as exc:
            errors.append(_error(_claimed_id(item), exc))
    return parsed, errors


async def _apply(
    service: Service,
    tenant: str,
    entities: list[Any],
    build: Callable[[Any], Mutation],
    id_of: Callable[[Any], str] = lambda e: e["id"],
) -> list[Outcome]:
    mutations: list[tuple[str, Mutation]] = []
    failed: list[Outcome] = []
    for place, entity in enumerate(entities):
        # each element let go once its mutation holds it: the store's writer may then
        # free an entity it was handed as soon as it is written (ngsi_ld.batch's
        # REPLACEMENT), not the event loop after the batch (benchmarks/README.md, slcut)
        entities[place] = None
        try:
            mutations.append((id_of(entity), build(entity)))
        except NgsiLdError as exc:
            failed.append(Outcome(entity_id=id_of(entity), error=exc))
    entity = None
    return failed + await service.commit_many(tenant, mutations)


async def _distribute(service: Service, call: Call, tenant: str, operation: str, count: int,
                      items: Callable[[], list[tuple[str, Entity | None, Any]]],
                      slot: Slot) -> BatchParts:
    """The batch's ``count`` entities (``items``: each one's id, entity and element as
    sent, asked only here) sent to the sources registered for them (4.3.6): which stay
    local, and what the sources answered (asked outside the batch's ``slot``: a source
    may be this broker)."""
    if not service.sources.serves(tenant):
        return BatchParts(frozenset(range(count)))
    return await slot.outside(service.sources.forward_batch(tenant, operation, items(), call))


def _as_sent(parsed: list[_Parsed], decoder: _Decoder) -> list[tuple[str, Entity | None, Any]]:
    """Each parsed element's id, entity and element as sent (the body decoded again where
    the parse let its elements go)."""
    sent = decoder.decode().data
    return [(p.entity["id"], p.entity, sent[p.place]) for p in parsed]


async def _received_in(service: Service, call: Call, decoder: _Decoder, slot: Slot,
                       operation: str, opts: set[str], *, require_type: bool,
                       create: bool = False,
                       ) -> tuple[list[_Parsed], list[dict[str, Any]], str, BatchParts]:
    """Within the batch's ``slot``: its elements decoded, their @context resolved and
    parsed (with the errors of those refused), its tenant, and which elements stay local
    once those of the sources registered for them were sent there (4.3.6)."""
    entities, errors = await _parse_all(service, decoder.decode(), require_type=require_type,
                                        key_values=wants_key_values(opts),
                                        consume=decoder.fresh)
    tenant = await service.tenant(call, create=create)
    parts = await _distribute(service, call, tenant, operation, len(entities),
                              lambda: _as_sent(entities, decoder), slot)
    return entities, errors, tenant, parts


def _local(parsed: list[_Parsed], parts: BatchParts) -> list[_Parsed]:
    return [item for i, item in enumerate(parsed) if i in parts.local]


def _result(
    outcomes: list[Outcome],
    errors: list[dict[str, Any]],
    *,
    all_ok_status: int,
    body_when_ok: list[str] | None = None,
    parts: BatchParts | None = None,
) -> Reply:
    if parts is not None and parts.forwarded:
        # an entity a source took is not missing here (as for a single write)
        taken = set(parts.forwarded)
        outcomes = [o for o in outcomes if not (isinstance(o.error, ResourceNotFound)
                                                and o.entity_id in taken)]
    success = [o.entity_id for o in outcomes if o.error is None]
    errors = errors + [_error(o.entity_id, o.error) for o in outcomes if o.error is not None]
    if parts is not None:  # what the sources took, or refused (distributed operations)
        success += [i for i in parts.forwarded if i not in success]
        errors += parts.errors
    if errors:
        return json_reply({"success": success, "errors": errors}, status=207)
    if all_ok_status == 201:
        return json_reply(body_when_ok if body_when_ok is not None else success, status=201)
    return empty(all_ok_status)


def _options(call: Call, allowed: frozenset[str]) -> set[str]:
    return options_of(call.params, allowed | {"keyValues", "simplified", "normalized",
                                              "concise"})


def _mode(opts: set[str], default: str) -> str:
    """``update`` or ``replace`` from ``?options=`` (``default`` when neither is given)."""
    if {"replace", "update"} <= opts:
        raise BadRequestData("options replace and update cannot be used together")
    return "update" if "update" in opts else "replace" if "replace" in opts else default


# 5.6.7 Batch Entity Creation
async def batch_create(service: Service, call: Call, source: BodySource) -> Reply:
    opts = _options(call, frozenset())
    decoder = await _received(source)
    async with service.batch_gate.slot() as slot:
        entities, errors, tenant, parts = await _received_in(
            service, call, decoder, slot, "batchCreate", opts, require_type=True, create=True)
        now = now_iso()
        outcomes = await _apply(
            service, tenant, _local(entities, parts),
            lambda p: batch.batch_create_mutation(p.entity, now, owned=True,
                                                  check_nulls=not p.null_free),
            _id_of)
    return _result(outcomes, errors, all_ok_status=201, parts=parts)


# 5.6.8 Batch Entity Upsert (options=replace|update)
async def batch_upsert(service: Service, call: Call, source: BodySource) -> Reply:
    opts = _options(call, frozenset({"replace", "update"}))
    mode = _mode(opts, "replace")
    decoder = await _received(source)
    async with service.batch_gate.slot() as slot:
        entities, errors, tenant, parts = await _received_in(
            service, call, decoder, slot, "batchUpsert", opts,
            require_type=mode == "replace", create=True)
        now = now_iso()
        local = [(p.entity, p.null_free) for p in _local(entities, parts)]
        # the elements as sent are let go before the write, not held through it (objects
        # the cyclic collector would walk while the batch is in flight)
        del entities
        outcomes = await _apply(
            service, tenant, local,
            # each entity was parsed for this batch and is read by nothing after its write
            lambda e: batch.batch_upsert_mutation(e[0], now, mode, owned=True,
                                                  check_nulls=not e[1]),
            lambda e: e[0]["id"],
        )
    created = [
        o.entity_id
        for o in outcomes
        if o.change is not None and not o.change.existed and o.error is None
    ]
    if errors or parts.errors or any(o.error is not None for o in outcomes):
        return _result(outcomes, errors, all_ok_status=204, parts=parts)
    if created:
        return json_reply(created, status=201)
    return empty(204)


# 5.6.9 Batch Entity Update (options=noOverwrite; update|replace as Orion-LD users send)
async def batch_update(service: Service, call: Call, source: BodySource) -> Reply:
    """Update existing entities: append with overwrite, or replace them (``options=replace``).

    With ``noOverwrite`` an entity whose existing attributes were kept is
    reported as an error (BadRequestData naming them), its new attributes written.
    """
    opts = _options(call, frozenset({"noOverwrite", "update", "replace"}))
    mode = _mode(opts, "update")
    no_overwrite = "noOverwrite" in opts
    if no_overwrite and mode == "replace":
        raise BadRequestData("options noOverwrite and replace cannot be used together")
    decoder = await _received(source)
    async with service.batch_gate.slot() as slot:
        entities, errors, tenant, parts = await _received_in(
            service, call, decoder, slot, "batchUpdate", opts, require_type=False)
        now = now_iso()
        failed: list[Outcome] = []
        mutations: list[tuple[str, Mutation]] = []
        contexts: list[ActiveContext] = []
        for entity, ctx, _, _ in _local(entities, parts):
            try:
                mutation = batch.batch_update_mutation(
                    entity, now, no_overwrite=no_overwrite, mode=mode
                )
            except NgsiLdError as exc:
                failed.append(Outcome(entity_id=entity["id"], error=exc))
                continue
            mutations.append((entity["id"], mutation))
            contexts.append(ctx)
        outcomes = await service.commit_many(tenant, mutations)
    for (_, mutation), ctx, outcome in zip(mutations, contexts, outcomes, strict=True):
        if outcome.error is None and isinstance(mutation, AttrsMutation):
            kept = mutation.result.not_updated
            if kept:  # 5.6.3: what noOverwrite kept is reported, not silently dropped
                names = ", ".join(f"{ctx.compact_iri(n.attr)} ({n.reason})" for n in kept)
                outcome.error = BadRequestData(f"not updated: {names}")
    return _result(failed + outcomes, errors, all_ok_status=204, parts=parts)


# 5.6.20 Batch Entity Merge
async def batch_merge(service: Service, call: Call, source: BodySource) -> Reply:
    opts = _options(call, frozenset())
    decoder = await _received(source)
    async with service.batch_gate.slot() as slot:
        entities, errors, tenant, parts = await _received_in(
            service, call, decoder, slot, "batchMerge", opts, require_type=False)
        now = now_iso()
        outcomes = await _apply(service, tenant, [p.entity for p in _local(entities, parts)],
                                lambda e: batch.batch_merge_mutation(e, now))
    return _result(outcomes, errors, all_ok_status=204, parts=parts)


# 5.6.10 Batch Entity Delete
async def batch_delete(service: Service, call: Call, source: BodySource) -> Reply:
    """Delete entities by id, in array order (an id given twice fails the second time).

    The body is a JSON array of ids; it needs no @context whatever its Content-Type
    (ngsildclient posts it as application/ld+json).
    """
    body = (await _received(source)).decode()
    ids = batch.check_items(body.data, service.settings.max_batch_size)
    if not all(isinstance(i, str) for i in ids):
        raise BadRequestData("the body of a batch delete must be a JSON array of entity ids")
    tenant = await service.tenant(call)
    async with service.batch_gate.slot() as slot:
        parts = await _distribute(service, call, tenant, "batchDelete", len(ids),
                                  lambda: [(i, None, i) for i in ids], slot)
        local = [i for n, i in enumerate(ids) if n in parts.local]
        outcomes = await _apply(service, tenant, local, batch.batch_delete_mutation,
                                id_of=lambda i: i)
    return _result(outcomes, [], all_ok_status=204, parts=parts)
