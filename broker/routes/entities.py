"""Clauses 5.6 and 5.7.1 over HTTP: /ngsi-ld/v1/entities/{entityId}[/attrs[/{attrId}]].

Adapters only: the path ids and the body are read here, the operation is
``broker.service.entities``.  Create Entity, Append and Update Entity Attributes
and Partial Attribute Update of the common shape (:func:`_direct_tenant`) take
the short path of ``broker.service.direct_writes`` instead, ahead of the
preconditions, which such a request passes; the usual Update Entity Attributes
(a device's PATCH of a reading) is read on a shorter one still
(``broker.routes.usual_update``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict

from broker.http import (
    CONTENT_TYPE,
    FIWARE_SERVICE,
    PREFER,
    SNAPSHOT,
    TENANT,
    joined,
    read_body,
    read_typed,
    typed_body,
)
from broker.routes.usual_update import usual_update
from broker.service import direct_writes, entities, entitymaps
from broker.service.core import Service
from broker.service.direct_writes import DirectWrites
from broker.service.entities import ENTITIES, check_entity_id
from broker.service.hot import HotAnswers
from broker.service.reply import Reply
from broker.shaperoutes import index_shapes
from broker.state import BROKER, service_of
from broker.web import Handler, add_route, call_of, response_of
from ngsi_ld.bodies import JSON, LD_JSON, MERGE_PATCH, Body
from ngsi_ld.errors import BadRequestData

#: answers of Retrieve Entity by the request as sent: the body and the headers
HOT = web.AppKey("hot_retrievals", HotAnswers[tuple[bytes, CIMultiDict[str]]])
#: whether writes of the common shape take the short path, and how many did
DIRECT = web.AppKey("direct_writes", DirectWrites)

#: 6.3.4: a PATCH body may also be application/merge-patch+json
PATCH_MEDIA = (JSON, LD_JSON, MERGE_PATCH)
WRITE_MEDIA = (JSON, LD_JSON)


def _entity_id(request: web.Request) -> str:
    return check_entity_id(request.match_info["entityId"])


def _create(app: web.Application) -> Handler:
    broker = app[BROKER]  # found once: a write spends its CPU thin (issue 19)

    async def create_entity(request: web.Request) -> web.Response:
        service = broker.service
        body = await read_body(request, service.settings.max_body_size, WRITE_MEDIA)
        call = call_of(request)
        return response_of(await entities.create_entity(service, call, body), call)

    return create_entity


#: a write on the short path: the service, the tenant, the request -> the reply
DirectWrite = Callable[[Service, str, web.Request], Awaitable[Reply]]


def _direct_tenant(direct: DirectWrites, service: Service, request: web.Request) -> str | None:
    """The tenant of a write of the common shape, else None (the general path).

    The shape: no query parameter (no options, no ``type`` selector), a body of
    Content-Type ``application/json`` or ``application/ld+json`` as such (so
    the preconditions of 6.3.4 pass), no ``Prefer``, Snapshot or Entity map
    header, and a tenant already known that no source serves
    (:meth:`DirectWrites.tenant`).  A Link header may name any @context.
    """
    headers = request.headers
    if ("?" in request.raw_path or headers.get(CONTENT_TYPE) not in WRITE_MEDIA
            or PREFER in headers or SNAPSHOT in headers or entitymaps.HEADER in headers):
        return None
    return direct.tenant(service, joined(headers, TENANT), joined(headers, FIWARE_SERVICE))


def _direct(app: web.Application, write: DirectWrite) -> Callable[[Handler], Handler]:
    """A write of the common shape answered by ``write``, another by the general path."""
    direct = app[DIRECT]
    broker = app[BROKER]

    def wrap(handler: Handler) -> Handler:
        async def direct_or_general(request: web.Request) -> web.StreamResponse:
            service = broker.service
            tenant = _direct_tenant(direct, service, request)
            if tenant is None:
                return await handler(request)
            return response_of(await write(service, tenant, request))

        return direct_or_general

    return wrap


def _written(operation: Callable[..., Awaitable[Reply]], service: Service,
             request: web.Request, *args: str) -> Awaitable[Reply]:
    """``operation(service, *args, body)`` of the request's body: called at once when the
    body arrived with the headers (no coroutine of its own between the route and the
    operation: every write passes here, issue 19), else once it has arrived.  The
    Content-Type is one of WRITE_MEDIA as it is (:func:`_direct_tenant`): not parsed again.
    """
    body = typed_body(request, service.settings.max_body_size, request.headers[CONTENT_TYPE])
    if body is None:
        return _when_read(operation, service, request, args)
    return operation(service, *args, body)


async def _when_read(operation: Callable[..., Awaitable[Reply]], service: Service,
                     request: web.Request, args: tuple[str, ...]) -> Reply:
    body = await read_typed(request, service.settings.max_body_size,
                            request.headers[CONTENT_TYPE])
    return await operation(service, *args, body)


def _direct_create(service: Service, tenant: str, request: web.Request) -> Awaitable[Reply]:
    return _written(direct_writes.create_entity, service, request, tenant)


def _direct_attrs(operation: Callable[[Service, str, str, Body], Awaitable[Reply]],
                  ) -> DirectWrite:
    """``operation`` (``direct_writes.update_attrs`` or ``append_attrs``) of the
    request's entity."""

    def write(service: Service, tenant: str, request: web.Request) -> Awaitable[Reply]:
        return _written(operation, service, request, tenant, _entity_id(request))

    return write


def _direct_patch_attr(service: Service, tenant: str, request: web.Request) -> Awaitable[Reply]:
    entity_id = _entity_id(request)
    return _written(direct_writes.patch_attr, service, request, tenant, entity_id,
                    request.match_info["attrId"])


async def retrieve_entity(request: web.Request) -> web.Response:
    entity_id = _entity_id(request)
    call = call_of(request)
    service = service_of(request)
    reply = await entities.retrieve_entity(service, call, entity_id)
    response = response_of(reply, call)
    raw_path = request.raw_path
    # a request with Cache-Control: no-cache (RFC 9111 5.2.1.4) is not kept: kept under
    # its headers, the answer could only serve that same request, which refuses it
    if call.reusable is not None and reply.body is not None and "?" not in raw_path \
            and not call.fresh:
        request.app[HOT].put(service, (raw_path, request.raw_headers), call,
                             (reply.body, CIMultiDict(response.headers)), len(reply.body))
    return response


def _kept_retrievals(app: web.Application) -> Callable[[Handler], Handler]:
    """Retrieve Entity answered from the kept answer of the same request, if any.

    Ahead of the preconditions: the request as sent (its path and every header)
    passed them when its answer was kept, and they depend on nothing else.  A
    request with ``Cache-Control: no-cache`` finds nothing: none is kept under its
    headers (``retrieve_entity``).
    """
    hot = app[HOT] = HotAnswers()
    broker = app[BROKER]

    def wrap(handler: Handler) -> Handler:
        async def kept_or_retrieved(request: web.Request) -> web.StreamResponse:
            raw_path = request.raw_path
            if "?" not in raw_path:
                kept = hot.get(broker.service, (raw_path, request.raw_headers))
                if kept is not None:
                    # the Response copies the kept headers: the edge adds its own to the copy
                    return web.Response(body=kept[0], headers=kept[1])
            return await handler(request)

        return kept_or_retrieved

    return wrap


async def delete_entity(request: web.Request) -> web.Response:
    entity_id = _entity_id(request)
    call = call_of(request)
    return response_of(await entities.delete_entity(service_of(request), call, entity_id), call)


def _write(app: web.Application, operation: entities.EntityWrite,
           media: tuple[str, ...] = WRITE_MEDIA) -> Handler:
    broker = app[BROKER]

    async def handler(request: web.Request) -> web.Response:
        entity_id = _entity_id(request)
        service = broker.service
        body = await read_body(request, service.settings.max_body_size, media)
        call = call_of(request)
        return response_of(await operation(service, call, entity_id, body), call)

    return handler


def _attr_write(app: web.Application, operation: entities.AttributeWrite,
                media: tuple[str, ...] = WRITE_MEDIA) -> Handler:
    broker = app[BROKER]

    async def handler(request: web.Request) -> web.Response:
        entity_id = _entity_id(request)
        service = broker.service
        body = await read_body(request, service.settings.max_body_size, media)
        call = call_of(request)
        attr = request.match_info["attrId"]
        return response_of(await operation(service, call, entity_id, attr, body), call)

    return handler


async def delete_attr(request: web.Request) -> web.Response:
    entity_id = _entity_id(request)
    call = call_of(request)
    attr = request.match_info["attrId"]
    return response_of(await entities.delete_attr(service_of(request), call, entity_id, attr),
                       call)


async def missing_entity_id(request: web.Request) -> web.Response:
    """``/entities//attrs...`` (5.6.2.4 to 5.6.5.4): "If the Entity ID is not present
    ... BadRequestData"."""
    raise BadRequestData("the entity id is missing from the path")


def setup(app: web.Application) -> None:
    one = ENTITIES + "/{entityId}"
    attr = one + "/attrs/{attrId}"
    app[DIRECT] = DirectWrites()
    add_route(app, "POST", ENTITIES, _create(app), "createEntity",
              before=_direct(app, _direct_create))
    # the paths below /entities found by their shape, after /entities itself (which the
    # router tries first, at once for a POST or a query)
    index_shapes(app, ENTITIES)
    add_route(app, "GET", one, retrieve_entity, "retrieveEntity",
              before=_kept_retrievals(app))
    add_route(app, "DELETE", one, delete_entity, "deleteEntity")
    add_route(app, "PATCH", one, _write(app, entities.merge_entity, PATCH_MEDIA), "mergeEntity")
    add_route(app, "PUT", one, _write(app, entities.replace_entity), "replaceEntity")
    add_route(app, "POST", one + "/attrs", _write(app, entities.append_attrs), "appendAttributes",
              before=_direct(app, _direct_attrs(direct_writes.append_attrs)))
    # the usual PATCH on the shortest path (usual_update), any other on the short one
    add_route(app, "PATCH", one + "/attrs", _write(app, entities.update_attrs, PATCH_MEDIA),
              "updateAttributes",
              before=usual_update(app[BROKER], app[DIRECT],
                                  _direct(app, _direct_attrs(direct_writes.update_attrs))))
    add_route(app, "PATCH", attr, _attr_write(app, entities.patch_attr, PATCH_MEDIA),
              "updateAttribute", before=_direct(app, _direct_patch_attr))
    add_route(app, "PUT", attr, _attr_write(app, entities.replace_attr), "replaceAttribute")
    add_route(app, "DELETE", attr, delete_attr, "deleteAttribute")
    # the entity id left out: /entities//attrs/... (PATCH or PUT of /entities/: app.py)
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        add_route(app, method, ENTITIES + "//attrs", missing_entity_id)
        add_route(app, method, ENTITIES + "//attrs/{attrId}", missing_entity_id)
