"""Clause 5.11: the HTTP adapters of ``/csourceSubscriptions`` (resources 6.10, 6.11).

The :class:`~subscriptions.registrations.RegistrationSubscriptions` are built by
the composition root and kept under :data:`~broker.state.CSOURCE_SUBSCRIPTIONS`;
these adapters check the tenant through the service and call them.  The
answers are rendered as entity subscriptions are (names compacted, ``status``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from broker.http import read_body
from broker.service import Call, Reply, Service, empty
from broker.service.answers import entity_reply, link_only
from broker.state import CSOURCE_SUBSCRIPTIONS, service_of
from broker.web import add_route, call_of, response_of
from ngsi_ld.attributes import is_iri
from ngsi_ld.bodies import JSON, LD_JSON, MERGE_PATCH
from ngsi_ld.errors import BadRequestData
from ngsi_ld.headers import negotiate, parse_link_context
from ngsi_ld.paging import page_of, subscription_page_links
from ngsi_ld.params import flag, options_of
from subscriptions import compact_subscription
from subscriptions.registrations import RegistrationSubscriptions

__all__ = ["CSOURCE_SUBSCRIPTIONS_PATH", "setup"]

CSOURCE_SUBSCRIPTIONS_PATH = "/ngsi-ld/v1/csourceSubscriptions"
READ_MEDIA = (JSON, LD_JSON)


def _subs(request: web.Request) -> RegistrationSubscriptions:
    return request.app[CSOURCE_SUBSCRIPTIONS]


def _sub_id(request: web.Request) -> str:
    sub_id = request.match_info["subscriptionId"]
    if not is_iri(sub_id):
        raise BadRequestData(f"subscription id {sub_id!r} is not a URI")
    return sub_id


async def _rendered(service: Service, subs: RegistrationSubscriptions, call: Call,
                    docs: list[dict[str, Any]], *, sys_attrs: bool,
                    headers: dict[str, str] | None = None, one: bool = False) -> Reply:
    media = negotiate(call.accept, READ_MEDIA)
    client_context = parse_link_context(call.link)
    ctx = await service.resolver.active(client_context)
    out = [compact_subscription(doc, ctx.compact_iri, sys_attrs=sys_attrs,
                                status=subs.status(doc)) for doc in docs]
    return await entity_reply(service, out[0] if one else out, media, client_context,
                              headers=headers, tenant=service.tenant_named(call))


# 5.11.2 Create Context Source Registration Subscription
async def _create(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size)
    call = call_of(request)
    tenant = await service.tenant(call, create=True)
    sub_id = await _subs(request).create(tenant, body.data, body.client_context)
    headers = {"Location": f"{CSOURCE_SUBSCRIPTIONS_PATH}/{quote(sub_id, safe=':')}",
               **await link_only(service, body.client_context, tenant)}
    return response_of(empty(201, headers), call)


# 5.11.5 Query Context Source Registration Subscriptions
async def _query(request: web.Request) -> web.Response:
    service = service_of(request)
    settings = service.settings
    call = call_of(request)
    opts = options_of(call.params, frozenset({"sysAttrs", "count"}))
    count = flag(call.params, "count") or "count" in opts
    offset, limit = page_of(call.params, count, settings.default_page_size,
                            settings.max_page_size)
    media = negotiate(call.accept, READ_MEDIA)
    tenant = await service.tenant(call)
    subs = _subs(request)
    docs = await subs.of_tenant(tenant)
    headers = {"NGSILD-Results-Count": str(len(docs))} if count else {}
    reply = await _rendered(service, subs, call, docs[offset:offset + limit],
                            sys_attrs="sysAttrs" in opts, headers=headers)
    reply.add_links(subscription_page_links(CSOURCE_SUBSCRIPTIONS_PATH, call.params, offset,
                                            limit, len(docs), media))
    return response_of(reply, call)


# 5.11.4 Retrieve Context Source Registration Subscription
async def _retrieve(request: web.Request) -> web.Response:
    service = service_of(request)
    call = call_of(request)
    sub_id = _sub_id(request)
    tenant = await service.tenant(call)
    subs = _subs(request)
    doc = await subs.get(tenant, sub_id)
    sys_attrs = "sysAttrs" in options_of(call.params, frozenset({"sysAttrs"}))
    return response_of(await _rendered(service, subs, call, [doc], sys_attrs=sys_attrs,
                                       one=True), call)


# 5.11.3 Update Context Source Registration Subscription
async def _update(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size,
                           (JSON, LD_JSON, MERGE_PATCH))
    call = call_of(request)
    sub_id = _sub_id(request)
    tenant = await service.tenant(call)
    await _subs(request).update(tenant, sub_id, body.data, body.client_context)
    return response_of(empty(204, await link_only(service, body.client_context, tenant)), call)


# 5.11.6 Delete Context Source Registration Subscription
async def _delete(request: web.Request) -> web.Response:
    service = service_of(request)
    call = call_of(request)
    sub_id = _sub_id(request)
    tenant = await service.tenant(call)
    await _subs(request).delete(tenant, sub_id)
    return response_of(empty(204), call)


def setup(app: web.Application) -> None:
    path = CSOURCE_SUBSCRIPTIONS_PATH
    add_route(app, "POST", path, _create, "createCSourceRegistrationSubscription")
    add_route(app, "GET", path, _query, "queryCSourceRegistrationSubscriptions")
    one = path + "/{subscriptionId}"
    add_route(app, "GET", one, _retrieve, "retrieveCSourceRegistrationSubscription")
    add_route(app, "PATCH", one, _update, "updateCSourceRegistrationSubscription")
    add_route(app, "DELETE", one, _delete, "deleteCSourceRegistrationSubscription")
