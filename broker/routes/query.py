"""Clause 5.7.2 Query Entities over HTTP: ``GET /entities`` and ``POST /entityOperations/query``;
Purge Entities (5.6.21): ``DELETE /entities``.  Adapters of ``broker.service.queries``
and ``broker.service.purge``; a GET of the common shape is answered from its plan
(``broker.service.direct``).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from multidict import istr

from broker.http import (
    ACCEPT,
    FIWARE_SERVICE,
    LINK,
    PREFER,
    SNAPSHOT,
    TENANT,
    fresh_asked,
    joined,
    read_body,
)
from broker.service import direct, entitymaps, purge, queries
from broker.service.direct import DirectQueries
from broker.service.entities import ENTITIES
from broker.state import BROKER, service_of
from broker.web import Handler, add_route, call_of, response_of

QUERY = "/ngsi-ld/v1/entityOperations/query"
#: the plans of the GET queries of the common shape (``broker.service.direct``)
PLANS = web.AppKey("query_plans", DirectQueries)

_ENTITY_MAP = istr(entitymaps.HEADER)  # multidict's istr: no case-folding per request


# 5.7.2 Query Entities (GET)
async def query_entities(request: web.Request) -> web.StreamResponse:
    call = call_of(request)
    return response_of(await queries.query_entities(service_of(request), call), call)


def _planned(app: web.Application) -> Callable[[Handler], Handler]:
    """Query Entities answered from the plan of the same request, if it has one.

    Ahead of the preconditions (6.3.4): a plan is only made for a request that
    passes them (``direct.of_shape``), and they read nothing the plan's key lacks.
    The key is the request target as sent and the headers that decide the answer
    besides it; a request with a header that takes it off the shape (Prefer, a
    Snapshot, an Entity map) goes the general way.  ``Cache-Control: no-cache``
    (RFC 9111 5.2.1.4) keeps the plan (a parse, no data) but not the kept answer.
    """
    plans = app[PLANS] = DirectQueries()
    broker = app[BROKER]

    def wrap(handler: Handler) -> Handler:
        async def planned_or_general(request: web.Request) -> web.StreamResponse:
            headers = request.headers
            if PREFER in headers or SNAPSHOT in headers or _ENTITY_MAP in headers:
                return await handler(request)
            key = (request.raw_path, headers.get(ACCEPT), headers.get(LINK),
                   joined(headers, TENANT), joined(headers, FIWARE_SERVICE))
            service = broker.service
            plan = plans.kept(service, key)
            if plan is None:
                if plans.missed(service, key) \
                        or not direct.PARAMETERS.issuperset(request.query.keys()):
                    return await handler(request)  # (off the shape: found once, not again)
                plan = await plans.plan(service, key, call_of(request))
                if plan is None:
                    return await handler(request)
            return response_of(await direct.answer(service, plan,
                                                   fresh=fresh_asked(headers)))

        return planned_or_general

    return wrap


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
    add_route(app, "GET", ENTITIES, query_entities, "queryEntities", before=_planned(app))
    add_route(app, "DELETE", ENTITIES, purge_entities, "purgeEntities")
    add_route(app, "POST", QUERY, query_post, "queryEntitiesPost")


__all__ = ["PLANS", "QUERY", "setup"]
