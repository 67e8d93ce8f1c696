"""Clauses 5.7.5 to 5.7.12 over HTTP: /ngsi-ld/v1/types and /ngsi-ld/v1/attributes.

Adapters of ``broker.service.discovery`` (which keeps the answers while the
store's data_version holds).
"""

from __future__ import annotations

from aiohttp import web

from broker.service import discovery
from broker.state import service_of
from broker.web import add_route, call_of, response_of

TYPES = "/ngsi-ld/v1/types"
ATTRIBUTES = "/ngsi-ld/v1/attributes"


# 5.7.5 and 5.7.6
async def list_types(request: web.Request) -> web.Response:
    call = call_of(request)
    return response_of(await discovery.list_types(service_of(request), call), call)


# 5.7.7
async def type_info(request: web.Request) -> web.Response:
    call = call_of(request)
    name = request.match_info["type"]
    return response_of(await discovery.type_info(service_of(request), call, name), call)


# 5.7.8 and 5.7.9
async def list_attributes(request: web.Request) -> web.Response:
    call = call_of(request)
    return response_of(await discovery.list_attributes(service_of(request), call), call)


# 5.7.10
async def attribute_info(request: web.Request) -> web.Response:
    call = call_of(request)
    name = request.match_info["attrId"]
    return response_of(await discovery.attribute_info(service_of(request), call, name), call)


def setup(app: web.Application) -> None:
    add_route(app, "GET", TYPES, list_types, "retrieveTypes")
    add_route(app, "GET", TYPES + "/{type}", type_info, "retrieveType")
    add_route(app, "GET", ATTRIBUTES, list_attributes, "retrieveAttributes")
    add_route(app, "GET", ATTRIBUTES + "/{attrId}", attribute_info, "retrieveAttribute")


__all__ = ["setup"]
