"""Clauses 5.9 and 5.10: the HTTP adapters of ``/csourceRegistrations`` (resources 6.8, 6.9).

Thin: the operations are :mod:`broker.service.registrations`.
"""

from __future__ import annotations

from aiohttp import web

from broker.http import read_body
from broker.service.registrations import (
    REGISTRATIONS,
    create_registration,
    delete_registration,
    query_registrations,
    retrieve_registration,
    update_registration,
)
from broker.state import service_of
from broker.web import add_route, call_of, response_of
from ngsi_ld.bodies import JSON, LD_JSON, MERGE_PATCH

__all__ = ["setup"]


async def _create(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size)
    call = call_of(request)
    return response_of(await create_registration(service, call, body.data, body.client_context))


async def _query(request: web.Request) -> web.Response:
    return response_of(await query_registrations(service_of(request), call_of(request)))


async def _retrieve(request: web.Request) -> web.Response:
    return response_of(await retrieve_registration(
        service_of(request), call_of(request), request.match_info["registrationId"]))


async def _update(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size,
                           (JSON, LD_JSON, MERGE_PATCH))
    return response_of(await update_registration(
        service, call_of(request), request.match_info["registrationId"], body.data,
        body.client_context))


async def _delete(request: web.Request) -> web.Response:
    return response_of(await delete_registration(
        service_of(request), call_of(request), request.match_info["registrationId"]))


def setup(app: web.Application) -> None:
    add_route(app, "POST", REGISTRATIONS, _create, "registerCSource")
    add_route(app, "GET", REGISTRATIONS, _query, "queryCSourceRegistrations")
    one = REGISTRATIONS + "/{registrationId}"
    add_route(app, "GET", one, _retrieve, "retrieveCSourceRegistration")
    add_route(app, "PATCH", one, _update, "updateCSourceRegistration")
    add_route(app, "DELETE", one, _delete, "deleteCSourceRegistration")
