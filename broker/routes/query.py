"""Clause 5.7.2 Query Entities over HTTP: ``GET /entities`` and ``POST /entityOperations/query``;
Purge Entities (5.6.21): ``DELETE /entities``.  Adapters of ``broker.service.queries``
and ``broker.service.purge``.
"""

from __future__ import annotations

from aiohttp import web

from broker.http import read_body
from broker.service import purge, queries
from broker.service.entities import ENTITIES
from broker.state import service_of
from broker.web import add_route, call_of, response_of

QUERY = "/ngsi-ld/v1/entityOperations/query"


# 5.7.2 Query Entities (GET)
async def query_entities(request: web.Request) -> web.StreamResponse:
    call = call_of(request)
    return response_of(await queries.query_entities(service_of(request), call), call)


# 5.7.2 Query Entities (POST /entityOperations/query, the body is a Query 5.2.23)
async def query_post(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size)
    call = call_of(request)
    return response_of(await queries.query_post(service, call, body), call)


# 5.6.21 Purge Entities
async def purge_entities(request: web.Request) -> web.Response:
    call = call_of(request)
    return response_of(await purge.purge_entities(service_of(request), call), call)


def setup(app: web.Application) -> None:
    add_route(app, "GET", ENTITIES, query_entities, "queryEntities")
    add_route(app, "DELETE", ENTITIES, purge_entities, "purgeEntities")
    add_route(app, "POST", QUERY, query_post, "queryEntitiesPost")


__all__ = ["QUERY", "setup"]
