"""Clauses 5.6.11 to 5.6.16, 5.7.3 and 5.7.4 over HTTP: /ngsi-ld/v1/temporal/...

Adapters only: the path ids and the body are read here, the operations are
``broker.service.temporal`` (writes) and ``broker.service.temporal_reads``.
"""

from __future__ import annotations

from aiohttp import web

from broker.http import read_body
from broker.service import temporal, temporal_reads
from broker.service.entities import check_entity_id
from broker.service.temporal import TEMPORAL
from broker.state import service_of
from broker.web import add_route, call_of, response_of
from ngsi_ld.attributes import check_name
from ngsi_ld.bodies import JSON, LD_JSON, MERGE_PATCH
from ngsi_ld.errors import BadRequestData

WRITE_MEDIA = (JSON, LD_JSON)
PATCH_MEDIA = (JSON, LD_JSON, MERGE_PATCH)


def _entity_id(request: web.Request) -> str:
    return check_entity_id(request.match_info["entityId"])


def _attr(request: web.Request) -> str:
    # the path's name as decoded: "..", "." and "%2e%2e" are not names (015_04)
    return check_name(request.match_info["attrId"])


async def missing_id(request: web.Request) -> web.Response:
    """An entity id or attribute name left out of the path (014_02, 015_02, 017_02)."""
    raise BadRequestData("the entity id or the attribute name is missing from the path")


async def upsert(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size, WRITE_MEDIA)
    call = call_of(request)
    return response_of(await temporal.upsert_temporal(service, call, body), call)


async def query(request: web.Request) -> web.Response:
    call = call_of(request)
    return response_of(await temporal_reads.query_temporal(service_of(request), call), call)


async def query_post(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size, WRITE_MEDIA)
    call = call_of(request)
    return response_of(await temporal_reads.query_temporal_post(service, call, body), call)


async def retrieve(request: web.Request) -> web.Response:
    entity_id = _entity_id(request)
    call = call_of(request)
    return response_of(
        await temporal_reads.retrieve_temporal(service_of(request), call, entity_id), call)


async def delete(request: web.Request) -> web.Response:
    entity_id = _entity_id(request)
    call = call_of(request)
    return response_of(await temporal.delete_temporal(service_of(request), call, entity_id),
                       call)


async def append_attrs(request: web.Request) -> web.Response:
    entity_id = _entity_id(request)
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size, WRITE_MEDIA)
    call = call_of(request)
    return response_of(await temporal.append_temporal_attrs(service, call, entity_id, body),
                       call)


async def delete_attr(request: web.Request) -> web.Response:
    entity_id = _entity_id(request)
    call = call_of(request)
    attr = _attr(request)
    return response_of(
        await temporal.delete_temporal_attr(service_of(request), call, entity_id, attr), call)


async def patch_instance(request: web.Request) -> web.Response:
    entity_id = _entity_id(request)
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size, PATCH_MEDIA)
    call = call_of(request)
    info = request.match_info
    return response_of(await temporal.patch_temporal_instance(
        service, call, entity_id, _attr(request), info["instanceId"], body), call)


async def delete_instance(request: web.Request) -> web.Response:
    entity_id = _entity_id(request)
    call = call_of(request)
    info = request.match_info
    return response_of(await temporal.delete_temporal_instance(
        service_of(request), call, entity_id, _attr(request), info["instanceId"]), call)


def setup(app: web.Application) -> None:
    one = TEMPORAL + "/{entityId}"
    attr = one + "/attrs/{attrId}"
    add_route(app, "POST", TEMPORAL, upsert, "upsertTemporal")
    add_route(app, "GET", TEMPORAL, query, "queryTemporal")
    add_route(app, "GET", one, retrieve, "retrieveTemporal")
    add_route(app, "DELETE", one, delete, "deleteTemporal")
    add_route(app, "POST", one + "/attrs", append_attrs, "appendAttrsTemporal")
    add_route(app, "DELETE", attr, delete_attr, "deleteAttrsTemporal")
    add_route(app, "PATCH", attr + "/{instanceId}", patch_instance, "updateAttrsTemporal")
    add_route(app, "DELETE", attr + "/{instanceId}", delete_instance,
              "deleteAttrInstanceTemporal")
    add_route(app, "POST", "/ngsi-ld/v1/temporal/entityOperations/query", query_post,
              "queryTemporalPost")
    # ids left out of the path: 400 (a PATCH of an instance without attribute: 405)
    add_route(app, "POST", TEMPORAL + "//attrs", missing_id)
    add_route(app, "DELETE", TEMPORAL + "//attrs/{attrId}", missing_id)
    for method in ("PATCH", "DELETE"):
        add_route(app, method, TEMPORAL + "//attrs/{attrId}/{instanceId}", missing_id)
    add_route(app, "DELETE", one + "/attrs//{instanceId}", missing_id)
