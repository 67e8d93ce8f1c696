"""Clause 5.13 @context source management: /ngsi-ld/v1/jsonldContexts.

Kinds (5.13.1): Hosted contexts were added by a client, Cached ones were fetched
by the broker (the core context is listed as one, bundled and never fetched),
ImplicitlyCreated ones stand for inline contexts of earlier requests.

A Hosted @context belongs to the tenant that added it, an ImplicitlyCreated one to
the tenant whose request brought its inline value: each is served, listed and
deleted through that tenant only (5.5.10: the tenant is the boundary an operation
applies within), while its URL resolves for any request that names it.  Cached
contexts are copies of public documents and are visible to every tenant.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.http import JSON, LD_JSON, flag, json_response, negotiate, read_body, tenant_of
from broker.state import broker_of
from broker.web import add_route
from ngsi_ld.errors import BadRequestData, OperationNotSupported, ResourceNotFound
from storage.base import ContextRecord

BASE = "/ngsi-ld/v1/jsonldContexts"
KINDS = ("Hosted", "Cached", "ImplicitlyCreated")
MEDIA = (JSON, LD_JSON)


def _info(record: ContextRecord) -> dict[str, Any]:
    """The details of one @context (5.13.3, 5.13.4 with details=true)."""
    info: dict[str, Any] = {
        "URL": record.url,
        "localId": "urn:ngsi-ld:" + str(record.extra.get("localId", "")),
        "kind": record.kind,
        "createdAt": record.created_at,
    }
    for key in ("lastUsage", "numberOfHits"):
        if key in record.extra:
            info[key] = record.extra[key]
    return info


def _local_id(request: web.Request) -> str:
    context_id = request.match_info["contextId"]
    return context_id.removeprefix("urn:ngsi-ld:")


def _tenant(request: web.Request) -> str:
    return tenant_of(request, broker_of(request).settings.multi_tenancy)


#: kinds that belong to one tenant (records from before tenants owned them: the default's)
OWNED = frozenset({"Hosted", "ImplicitlyCreated"})


def _visible(record: ContextRecord, tenant: str) -> bool:
    """Whether ``tenant`` may see ``record`` (Hosted and ImplicitlyCreated ones: only the
    tenant they belong to)."""
    return record.kind not in OWNED or record.extra.get("tenant", "") == tenant


async def _find(request: web.Request) -> ContextRecord:
    record = await broker_of(request).resolver.find(_local_id(request))
    if record is None or not _visible(record, _tenant(request)):
        raise ResourceNotFound(f"no @context with id {request.match_info['contextId']!r}")
    return record


# 5.13.2 Add @context
async def add_context(request: web.Request) -> web.Response:
    """Store the body's @context as Hosted; Location is where it is served.

    A body that is a bare JSON array is taken as ``{"@context": [...]}``, the form
    ngsi-go's ``create ldContext`` sends.
    """
    broker = broker_of(request)
    body = await read_body(request, broker.settings.max_body_size, MEDIA, context_rules=False)
    document = {"@context": body.data} if isinstance(body.data, list) else body.data
    record = await broker.resolver.add_hosted(document, _tenant(request))
    return web.Response(status=201, headers={"Location": f"{BASE}/{record.extra['localId']}"})


# 5.13.3 List @contexts
async def list_contexts(request: web.Request) -> web.Response:
    broker = broker_of(request)
    negotiate(request.headers.get("Accept"), MEDIA)
    kind = request.query.get("kind")
    if kind is not None and kind not in KINDS:
        raise BadRequestData(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    details = flag(request, "details")
    tenant = _tenant(request)
    records = [
        r for r in await broker.store.list_contexts()
        if (kind is None or r.kind == kind) and _visible(r, tenant)
    ]
    records.sort(key=lambda r: (r.created_at, r.url))
    if kind in (None, "Cached"):  # the core context is always there, first
        records.insert(0, broker.resolver.core_record())
    if details:
        return json_response([_info(r) for r in records])
    return json_response([r.url for r in records])


# 5.13.4 Serve @context
async def serve_context(request: web.Request) -> web.Response:
    """The @context document (JSON unless Accept prefers JSON-LD), or its details."""
    media = negotiate(request.headers.get("Accept"), MEDIA)
    details = flag(request, "details")
    record = await _find(request)
    if details:
        return json_response(_info(record))
    if record.kind == "Cached":
        raise OperationNotSupported(
            "the content of a Cached @context is served by its origin; use details=true"
        )
    return json_response(record.document, content_type=media)


# 5.13.5 Delete and Reload @context
async def delete_context(request: web.Request) -> web.Response:
    """Delete a @context, or with reload=true download a Cached one again.

    reload=true on anything but a Cached @context, an unknown id included, is
    BadRequestData; the core context cannot be deleted, and reloading it does
    nothing (it is bundled: the document behind its versioned URL never changes).
    """
    broker = broker_of(request)
    reload = flag(request, "reload")
    record = await broker.resolver.find(_local_id(request))
    if record is not None and not _visible(record, _tenant(request)):
        record = None
    if reload:
        if record is None or record.kind != "Cached":
            raise BadRequestData("reload=true applies to Cached @contexts only")
        if not record.extra.get("core"):
            await broker.resolver.reload(record)
        return web.Response(status=204)
    if record is None:
        raise ResourceNotFound(f"no @context with id {request.match_info['contextId']!r}")
    if record.extra.get("core"):
        raise BadRequestData("the core @context cannot be deleted")
    await broker.resolver.forget(record)
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    add_route(app, "POST", BASE, add_context, "addContext")
    add_route(app, "GET", BASE, list_contexts, "listContexts")
    add_route(app, "GET", BASE + "/{contextId}", serve_context, "serveContext")
    add_route(app, "DELETE", BASE + "/{contextId}", delete_context, "deleteContext")
