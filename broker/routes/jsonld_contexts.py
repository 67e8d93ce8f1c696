"""Clause 5.13 @context source management: /ngsi-ld/v1/jsonldContexts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.app import add_route, broker_of
from broker.http import JSON, LD_JSON, flag, json_response, negotiate, read_body
from broker.storage.base import ContextRecord
from ngsi_ld.errors import BadRequestData, OperationNotSupported, ResourceNotFound

BASE = "/ngsi-ld/v1/jsonldContexts"
KINDS = ("Hosted", "Cached", "ImplicitlyCreated")


def _info(record: ContextRecord) -> dict[str, Any]:
    info: dict[str, Any] = {
        "URL": record.url,
        "localId": "urn:ngsi-ld:" + str(record.extra.get("localId", "")),
        "kind": record.kind,
        "timestamp": record.created_at,
    }
    for key in ("lastUsage", "numberOfHits"):
        if key in record.extra:
            info[key] = record.extra[key]
    return info


def _local_id(request: web.Request) -> str:
    context_id = request.match_info["contextId"]
    return context_id.removeprefix("urn:ngsi-ld:")


# 5.13.2 Add @context
async def add_context(request: web.Request) -> web.Response:
    broker = broker_of(request)
    body = await read_body(
        request, broker.settings.max_body_size, (JSON, LD_JSON), context_rules=False
    )
    record = await broker.resolver.add_hosted(body.data)
    return web.Response(status=201, headers={"Location": f"{BASE}/{record.extra['localId']}"})


# 5.13.3 List @contexts
async def list_contexts(request: web.Request) -> web.Response:
    broker = broker_of(request)
    negotiate(request.headers.get("Accept"), (JSON, LD_JSON))
    kind = request.query.get("kind")
    if kind is not None and kind not in KINDS:
        raise BadRequestData(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    details = flag(request, "details")
    records = [r for r in await broker.store.list_contexts() if kind is None or r.kind == kind]
    records.sort(key=lambda r: (r.created_at, r.url))
    if details:
        return json_response([_info(r) for r in records])
    urls = [r.url for r in records]
    if kind in (None, "Cached"):  # the core context is always there
        urls.insert(0, broker.resolver.core_url)
    return json_response(urls)


# 5.13.4 Serve @context
async def serve_context(request: web.Request) -> web.Response:
    broker = broker_of(request)
    negotiate(request.headers.get("Accept"), (JSON, LD_JSON))
    record = await broker.resolver.find(_local_id(request))
    if record is None:
        raise ResourceNotFound(f"no @context with id {request.match_info['contextId']!r}")
    if flag(request, "details"):
        return json_response(_info(record))
    if record.kind == "Cached":
        raise OperationNotSupported(
            "the content of a Cached @context is served by its origin; use details=true"
        )
    return json_response(record.document, content_type=LD_JSON)


# 5.13.5 Delete and Reload @context
async def delete_context(request: web.Request) -> web.Response:
    broker = broker_of(request)
    record = await broker.resolver.find(_local_id(request))
    if record is None:
        raise ResourceNotFound(f"no @context with id {request.match_info['contextId']!r}")
    if flag(request, "reload"):
        if record.kind != "Cached":
            raise BadRequestData("reload=true applies to Cached @contexts only")
        await broker.resolver.reload(record)
    else:
        await broker.resolver.forget(record)
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    add_route(app, "POST", BASE, add_context, "addContext")
    add_route(app, "GET", BASE, list_contexts, "listContexts")
    add_route(app, "GET", BASE + "/{contextId}", serve_context, "serveContext")
    add_route(app, "DELETE", BASE + "/{contextId}", delete_context, "deleteContext")
