"""Clause 5.16 Snapshots over HTTP: resources 6.36 /snapshots, 6.37 /snapshots/{id} and
6.38 /snapshots/{id}/clone.

A Snapshot is a record (collection ``snapshots``) of its tenant; the entities it
froze live in a tenant of their own, named ``~snapshot-<hex>`` (a name no client
can give: tenants are letters, digits, ``_`` and ``-``) and kept in the record.
Reads carrying ``NGSILD-Snapshot`` (6.3.22) are answered from that tenant
(:meth:`broker.service.Service.tenant`), with every query and retrieval feature.

The snapshot queries run when the Snapshot is created, before the answer
(5.16.1.4 lets the fill run in the background; here the status a client first
reads is already final).  Snapshot queries select local entities only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import quote

from broker.service.core import Call, Service
from broker.service.queries import every_match
from broker.service.reply import Reply, empty, json_reply
from ngsi_ld import operations
from ngsi_ld.bodies import Body
from ngsi_ld.errors import AlreadyExists, BadRequestData, ResourceNotFound
from ngsi_ld.identifiers import is_iri
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity, Mutation
from ngsi_ld.query import EntityQuery
from ngsi_ld.query.body import post_queries
from ngsi_ld.query.selectors import resolve
from ngsi_ld.snapshots import (
    RECORDS,
    STORE_TENANT,
    apply_fragment,
    new_snapshot,
    purge_query,
    selected_by,
)
from ngsi_ld.timeutil import now_iso

log = logging.getLogger("broker.snapshots")

__all__ = [
    "clone_snapshot", "create_snapshot", "delete_snapshot", "purge_snapshots",
    "retrieve_snapshot", "update_snapshot",
]

SNAPSHOTS = "/ngsi-ld/v1/snapshots"
#: entities written (or deleted) per store transaction while filling or dropping a copy
BATCH = 500


def _frozen_tenant() -> str:
    return "~snapshot-" + uuid.uuid4().hex[:24]


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != STORE_TENANT}


def _location(snapshot_id: str) -> dict[str, str]:
    return {"Location": f"{SNAPSHOTS}/{quote(snapshot_id, safe=':')}"}


async def _record(service: Service, tenant: str, snapshot_id: str) -> dict[str, Any]:
    if not is_iri(snapshot_id):
        raise BadRequestData(f"Snapshot id {snapshot_id!r} is not a URI")
    record = await service.store.get_record(tenant, RECORDS, snapshot_id)
    if record is None:
        raise ResourceNotFound(f"Snapshot {snapshot_id} not found")
    return record


async def _write_all(service: Service, tenant: str, entities: list[Entity]) -> None:
    """Store ``entities`` as they are in ``tenant`` (a frozen copy: no change events)."""
    for start in range(0, len(entities), BATCH):
        chunk = entities[start:start + BATCH]
        await service.store.modify_many(tenant, [(e["id"], _put(e)) for e in chunk])


def _put(entity: Entity) -> Mutation:
    return lambda current: entity


async def _selected(
    service: Service, call: Call, tenant: str, queries: list[EntityQuery]
) -> dict[str, Entity]:
    if service.sources.serves(tenant):
        # 5.16.1.4: "following the behaviour described in clause 5.7.2.4": what the
        # registered sources hold is frozen too
        return {e["id"]: e for e in await every_match(service, call, tenant, queries,
                                                      whole=True)}
    found: dict[str, Entity] = {}
    for query in queries:
        entities, _ = await service.store.query_entities(tenant, query)
        found.update((e["id"], e) for e in entities)
    return found


async def _fill(
    service: Service, call: Call, tenant: str, record: dict[str, Any], ctx: ActiveContext
) -> dict[str, Any]:
    """Run the snapshot queries, freeze what they select, and record the outcome."""
    details, frozen = [], {}
    call.active = ctx
    for query in record["snapshotQueries"]:
        queries, _ = post_queries(query)
        selected = await _selected(service, call, tenant,
                                   [resolve(ctx, q) for q in queries])
        frozen.update(selected)
        details.append({"resultStatus": "success", "numberOfEntities": len(selected)})
    await service.store.ensure_tenant(record[STORE_TENANT])
    await _write_all(service, record[STORE_TENANT], list(frozen.values()))
    done = {**record, "snapshotStatus": "success", "snapshotQueriesDetails": details}
    await service.store.put_record(tenant, RECORDS, record["id"], done)
    return done


async def _drop(service: Service, record: dict[str, Any]) -> None:
    """Delete the entities of a Snapshot's frozen copy."""
    frozen = record.get(STORE_TENANT)
    if not isinstance(frozen, str):
        return
    while True:
        entities, _ = await service.store.query_entities(frozen, EntityQuery(), limit=BATCH)
        if not entities:
            return
        # nobody subscribes to a frozen copy: a plain store write, no change event
        await service.store.modify_many(frozen, [
            (e["id"], operations.delete_entity(e["id"])) for e in entities
        ])


# 5.16.1 Create Snapshot
async def create_snapshot(service: Service, call: Call, body: Body) -> Reply:
    tenant = await service.tenant(call, create=True)
    snapshot = new_snapshot(body.data, f"urn:ngsi-ld:Snapshot:{uuid.uuid4().hex}", now_iso())
    for query in snapshot["snapshotQueries"]:
        post_queries(query)  # every query valid before anything is written
    if await service.store.get_record(tenant, RECORDS, snapshot["id"]) is not None:
        raise AlreadyExists(f"Snapshot {snapshot['id']} already exists")
    record = {**snapshot, STORE_TENANT: _frozen_tenant()}
    await service.store.put_record(tenant, RECORDS, record["id"], record)
    ctx = await service.resolver.active(body.client_context)
    if service.sources.serves(tenant):
        # sources may take their time: the Snapshot is "preparing" until they answered
        task = asyncio.create_task(_fill_or_fail(service, call, tenant, record, ctx))
        _FILLING.add(task)
        task.add_done_callback(_FILLING.discard)
    else:
        await _fill(service, call, tenant, record, ctx)
    return empty(201, _location(record["id"]))


#: Snapshots being filled in the background (kept so that they are not collected)
_FILLING: set[asyncio.Task[None]] = set()


async def _fill_or_fail(service: Service, call: Call, tenant: str, record: dict[str, Any],
                        ctx: ActiveContext) -> None:
    try:
        await _fill(service, call, tenant, record, ctx)
    except Exception:  # the Snapshot says it failed; nobody else would hear of it
        log.exception("Snapshot %s could not be filled", record["id"])
        failed = {**record, "snapshotStatus": "failed"}
        await service.store.put_record(tenant, RECORDS, record["id"], failed)


# 5.16.3 Retrieve Snapshot Status
async def retrieve_snapshot(service: Service, call: Call, snapshot_id: str) -> Reply:
    tenant = await service.tenant(call)
    return json_reply(_public(await _record(service, tenant, snapshot_id)))


# 5.16.4 Update Snapshot Status
async def update_snapshot(service: Service, call: Call, snapshot_id: str,
                          body: Body) -> Reply:
    tenant = await service.tenant(call)
    updated = apply_fragment(await _record(service, tenant, snapshot_id), body.data)
    await service.store.put_record(tenant, RECORDS, updated["id"], updated)
    return json_reply(_public(updated))


# 5.16.5 Delete Snapshot
async def delete_snapshot(service: Service, call: Call, snapshot_id: str) -> Reply:
    tenant = await service.tenant(call)
    record = await _record(service, tenant, snapshot_id)
    await service.store.delete_record(tenant, RECORDS, record["id"])
    await _drop(service, record)
    return empty(204)


# 5.16.2 Clone Snapshot
async def clone_snapshot(service: Service, call: Call, snapshot_id: str,
                         body: Body) -> Reply:
    tenant = await service.tenant(call)
    source = await _record(service, tenant, snapshot_id)
    fragment = dict(body.data) if isinstance(body.data, dict) else body.data
    clone_id = f"urn:ngsi-ld:Snapshot:{uuid.uuid4().hex}"
    if isinstance(fragment, dict) and "id" in fragment:
        clone_id = fragment.pop("id")
        if not is_iri(clone_id):
            raise BadRequestData(f"Snapshot id {clone_id!r} is not a URI")
    now = now_iso()
    clone = apply_fragment({**source, "id": clone_id, "createdAt": now, "lastUsedAt": now},
                           fragment)
    if await service.store.get_record(tenant, RECORDS, clone_id) is not None:
        raise AlreadyExists(f"Snapshot {clone_id} already exists")
    clone[STORE_TENANT] = _frozen_tenant()
    await service.store.ensure_tenant(clone[STORE_TENANT])
    entities, _ = await service.store.query_entities(source[STORE_TENANT], EntityQuery())
    await _write_all(service, clone[STORE_TENANT], entities)
    await service.store.put_record(tenant, RECORDS, clone_id, clone)
    return empty(201, _location(clone_id))


# 5.16.7 Purge Snapshots
async def purge_snapshots(service: Service, call: Call) -> Reply:
    query = purge_query(call.params.get("q"))
    tenant = await service.tenant(call)
    for record in await service.store.list_records(tenant, RECORDS):
        if selected_by(query, _public(record)):
            await service.store.delete_record(tenant, RECORDS, record["id"])
            await _drop(service, record)
    return empty(204)
