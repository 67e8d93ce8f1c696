"""Clause 5.14 Entity maps over HTTP: 6.32 /entityMaps/{id} and 6.34 /entityMaps (a query
creating a map).  Adapters of ``broker.service.entitymaps`` and ``queries``."""

from __future__ import annotations

from aiohttp import web

from broker.http import read_body
from broker.service import entitymaps, queries
from broker.state import service_of
from broker.web import add_route, call_of, response_of

MAPS = entitymaps.MAPS
TEMPORAL_MAPS = "/ngsi-ld/v1/temporal/entityMaps"


async def query_entity_map(request: web.Request) -> web.Response:
    call = call_of(request)
    return response_of(await queries.query_entity_map(service_of(request), call), call)


async def query_temporal_entity_map(request: web.Request) -> web.Response:
    call = call_of(request)
    return response_of(await queries.query_temporal_entity_map(service_of(request), call),
                       call)


async def retrieve_entity_map(request: web.Request) -> web.Response:
    call = call_of(request)
    return response_of(await entitymaps.retrieve_entity_map(
        service_of(request), call, request.match_info["entityMapId"]), call)


async def update_entity_map(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size)
    call = call_of(request)
    return response_of(await entitymaps.update_entity_map(
        service, call, request.match_info["entityMapId"], body.data), call)


async def delete_entity_map(request: web.Request) -> web.Response:
    call = call_of(request)
    return response_of(await entitymaps.delete_entity_map(
        service_of(request), call, request.match_info["entityMapId"]), call)


def setup(app: web.Application) -> None:
    add_route(app, "GET", MAPS, query_entity_map)
    add_route(app, "GET", TEMPORAL_MAPS, query_temporal_entity_map)  # 6.35
    # /entityMaps/{id} (v1.9.1, 6.32) and /entityMap/{id}, as the 1.8.1 OpenAPI spells it
    for one in (MAPS + "/{entityMapId}", MAPS[:-1] + "/{entityMapId}"):
        add_route(app, "GET", one, retrieve_entity_map)
        add_route(app, "PATCH", one, update_entity_map)
        add_route(app, "DELETE", one, delete_entity_map)
