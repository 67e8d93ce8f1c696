"""Clause 5.14 Entity maps: the resource, its record, and the paging it fixes (5.5.9.3).

An Entity map records which entities a query found and who holds each
(5.2.39: entity id → registration ids, ``@none`` for this broker).  It is
created by ``GET /entityMaps?<query>`` (5.14.4) or by a query with
``entityMap=true``, and named by later pages of that query in the
``NGSILD-EntityMap`` header (6.3.23): the pages then walk the map, rechecking
each entity against the query and pruning those that no longer fit (the
paging itself is in ``broker.service.queries``).  Maps are records of their
tenant (collection ``entityMaps``) with an ``expiresAt`` after which they are
gone (5.5.14).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from broker.service.core import Call, Service
from broker.service.reply import Reply, empty, json_reply
from ngsi_ld.attributes import is_iri
from ngsi_ld.errors import BadRequestData, ResourceNotFound
from ngsi_ld.federation import LOCAL as LOCAL_SOURCE
from ngsi_ld.federation import (
    EntityMap,
    apply_map_update,
    build_entity_map,
    lifetime,
    render_entity_map,
)
from ngsi_ld.params import Params, flag

__all__ = [
    "COLLECTION", "HEADER", "MAPS", "check_wide_enough", "create_map", "delete_entity_map",
    "load_map", "local_map", "location", "map_id_of", "retrieval_map", "retrieve_entity_map",
    "save_map", "update_entity_map", "wants_map",
]

COLLECTION = "entityMaps"
#: 6.3.23
HEADER = "NGSILD-EntityMap"
MAPS = "/ngsi-ld/v1/entityMaps"
_PREFIX = "urn:ngsi-ld:EntityMap:"
#: 5.14.4.4: a query for a map names one of these (else it is too wide)
_NARROWING = ("type", "attrs", "q", "georel", "local")


def _now() -> datetime:
    return datetime.now(UTC)


def location(map_id: str) -> str:
    """The resource URI of a map, what ``NGSILD-EntityMap`` carries."""
    return f"{MAPS}/{quote(map_id, safe=':')}"


def map_id_of(header: str) -> str:
    """The map id in an ``NGSILD-EntityMap`` value (a resource URI or the id itself)."""
    value = header.strip()
    return unquote(value.rsplit("/", 1)[-1]) if "/" in value else value


def _record(entity_map: EntityMap) -> dict[str, Any]:
    return {"id": entity_map.id, "expiresAt": entity_map.expires_at,
            "entities": {k: list(v) for k, v in entity_map.entities.items()},
            "linkedMaps": dict(entity_map.linked_maps), "query": dict(entity_map.query)}


def _from_record(record: Mapping[str, Any]) -> EntityMap:
    entities = record.get("entities") or {}
    return EntityMap(str(record["id"]), str(record["expiresAt"]),
                     {str(k): tuple(v) for k, v in entities.items()},
                     dict(record.get("linkedMaps") or {}), dict(record.get("query") or {}))


def check_wide_enough(params: Params) -> None:
    """5.14.4.4: a query for an Entity map must narrow the entities (BadRequestData)."""
    if not any(params.get(name) is not None for name in _NARROWING):
        raise BadRequestData("an Entity map needs a query naming type, attrs, q, a "
                             "geo-query or local=true")


async def create_map(service: Service, tenant: str, holders: Mapping[str, Iterable[str]],
                     params: Params, linked_maps: Mapping[str, str] | None = None) -> EntityMap:
    """A new map of who holds what, stored; its lifetime from ``entityMapLifetime``;
    ``linked_maps``: the sources' own maps (5.2.39 linkedMaps)."""
    now = _now()
    expires = now + lifetime(params.get("entityMapLifetime"))
    query = {k: v for k, v in params.items() if k not in ("limit", "offset", "count",
                                                           "entityMap", "entityMapLifetime")}
    entity_map = build_entity_map(_PREFIX + str(uuid.uuid4()), expires, holders, query=query,
                                  linked_maps=linked_maps)
    await save_map(service, tenant, entity_map)
    return entity_map


async def save_map(service: Service, tenant: str, entity_map: EntityMap) -> None:
    """Store ``entity_map`` (created or pruned)."""
    await service.store.put_record(tenant, COLLECTION, entity_map.id, _record(entity_map))


async def load_map(service: Service, tenant: str, map_id: str) -> EntityMap:
    """The map ``map_id``: BadRequestData if not a URI, ResourceNotFound if unknown or
    expired (5.5.14: "an expired Entity map cannot be accessed")."""
    if not is_iri(map_id):
        raise BadRequestData(f"Entity map id {map_id!r} is not a URI")
    record = await service.store.get_record(tenant, COLLECTION, map_id)
    if record is None:
        raise ResourceNotFound(f"Entity map {map_id} not found")
    entity_map = _from_record(record)
    if entity_map.expired(_now()):
        await service.store.delete_record(tenant, COLLECTION, map_id)
        raise ResourceNotFound(f"Entity map {map_id} has expired")
    return entity_map


async def retrieval_map(service: Service, call: Call, tenant: str,
                        holders: Mapping[str, Iterable[str]]) -> str | None:
    """5.7.1.4: the Entity map a Retrieve Entity names in its answer (None: none).

    A live map the request names is used and its location echoed; one that
    cannot be found or has expired is replaced by a new map, as is the
    absence of one when ``entityMap=true`` asks for it.
    """
    header = call.headers.get(HEADER)
    if header is not None:
        if await _live(service, tenant, header) is not None:
            return header
    elif not flag(call.params, "entityMap"):
        return None
    entity_map = await create_map(service, tenant, holders, call.params)
    return location(entity_map.id)


async def _live(service: Service, tenant: str, header: str) -> EntityMap | None:
    """The live map ``header`` names; None when it is unknown, expired or not a URI."""
    try:
        return await load_map(service, tenant, map_id_of(header))
    except (ResourceNotFound, BadRequestData):
        return None  # "a new EntityMap shall be created"


async def local_map(service: Service, call: Call, tenant: str,
                    found: Sequence[str]) -> tuple[list[str] | None, str | None, bool]:
    """5.7.3.4 and 5.7.4.4 for a read this broker answers alone (the temporal API).

    ``found`` are the ids the read selects, in its order.  Answers the ids to
    show (None: all of ``found``), the ``NGSILD-EntityMap`` value of the answer
    (None: no map) and whether the map was created by this request.  A live map
    the request names fixes the result set (5.5.9.3): only its entities are
    shown, and those held here alone that are no longer found are pruned from
    it; an unknown or expired
    one, or ``entityMap=true`` without one, creates a map of ``found``, all
    held here (``@none``).
    """
    header = call.headers.get(HEADER)
    if header is not None:
        entity_map = await _live(service, tenant, header)
        if entity_map is not None:
            fits = set(found)
            # only what this broker alone holds is known to be gone: a map made by a
            # distributed query keeps what its sources hold
            gone = [i for i, held in entity_map.entities.items()
                    if i not in fits and set(held) <= {LOCAL_SOURCE}]
            if gone:
                entity_map = entity_map.without(gone)
                await save_map(service, tenant, entity_map)
            kept = set(entity_map.ids)
            return [i for i in found if i in kept], header, False
    elif not flag(call.params, "entityMap"):
        return None, None, False
    created = await create_map(service, tenant, {LOCAL_SOURCE: list(found)}, call.params)
    return None, location(created.id), True


def wants_map(call: Call) -> bool:
    """True if the request creates or names an Entity map."""
    return HEADER in call.headers or "entityMap" in call.params


# 5.14.1 Retrieve EntityMap
async def retrieve_entity_map(service: Service, call: Call, map_id: str) -> Reply:
    tenant = await service.tenant(call, read=True)
    return json_reply(render_entity_map(await load_map(service, tenant, map_id)))


# 5.14.2 Update EntityMap
async def update_entity_map(service: Service, call: Call, map_id: str, body: Any) -> Reply:
    tenant = await service.tenant(call)
    entity_map = await load_map(service, tenant, map_id)
    await save_map(service, tenant, apply_map_update(entity_map, body, _now()))
    return empty(204)


# 5.14.3 Delete EntityMap
async def delete_entity_map(service: Service, call: Call, map_id: str) -> Reply:
    tenant = await service.tenant(call)
    await load_map(service, tenant, map_id)
    await service.store.delete_record(tenant, COLLECTION, map_id)
    return empty(204)
