"""Clause 5.8 of ETSI GS CIM 009: subscriptions (create, update, retrieve, query, delete).

The :class:`~subscriptions.SubscriptionManager` is built by the composition root
(``broker.app.create_app``) and kept under :data:`~broker.state.MANAGER`; these
adapters check the tenant through the service and call the manager.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from broker.http import read_body
from broker.service import Call, Reply, Service, empty
from broker.service.answers import entity_reply, link_only
from broker.state import DISTRIBUTED, MANAGER, service_of
from broker.web import add_route, call_of, response_of
from ngsi_ld.attributes import is_iri
from ngsi_ld.bodies import JSON, LD_JSON, MERGE_PATCH
from ngsi_ld.errors import BadRequestData
from ngsi_ld.headers import negotiate, parse_link_context
from ngsi_ld.paging import page_of, subscription_page_links
from ngsi_ld.params import flag, options_of
from subscriptions import SubscriptionManager, compact_subscription

__all__ = ["MANAGER", "SUBSCRIPTIONS", "manager_of", "setup"]

log = logging.getLogger("broker.subscriptions")

SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
READ_MEDIA = (JSON, LD_JSON)
RESULTS_COUNT = "NGSILD-Results-Count"


def manager_of(request: web.Request) -> SubscriptionManager:
    return request.app[MANAGER]


def _sub_id(request: web.Request) -> str:
    """The ``{subscriptionId}`` of the path: a URI, else BadRequestData (5.8.2 to 5.8.5)."""
    sub_id = request.match_info["subscriptionId"]
    if not is_iri(sub_id):
        raise BadRequestData(f"subscription id {sub_id!r} is not a URI")
    return sub_id


async def _rendered(service: Service, manager: SubscriptionManager, call: Call,
                    docs: list[dict[str, Any]], *, sys_attrs: bool,
                    headers: dict[str, str] | None = None, one: bool = False) -> Reply:
    media = negotiate(call.accept, READ_MEDIA)
    client_context = parse_link_context(call.link)
    ctx = await service.resolver.active(client_context)
    out = [compact_subscription(doc, ctx.compact_iri, sys_attrs=sys_attrs,
                                status=manager.status(doc)) for doc in docs]
    return await entity_reply(service, out[0] if one else out, media, client_context,
                              headers=headers, tenant=service.tenant_named(call))


# 5.8.1 Create Subscription
async def create_subscription(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size)
    call = call_of(request)
    tenant = await service.tenant(call, create=True)
    sub_id = await manager_of(request).create(tenant, body.data, body.client_context)
    # 5.8.1.4: the registered sources get copies
    await request.app[DISTRIBUTED].created(tenant, sub_id, body.data, body.client_context)
    headers = {"Location": f"{SUBSCRIPTIONS}/{quote(sub_id, safe=':')}",
               **await link_only(service, body.client_context, tenant)}
    return response_of(empty(201, headers), call)


# 5.8.4 Query Subscriptions
async def query_subscriptions(request: web.Request) -> web.Response:
    service = service_of(request)
    settings = service.settings
    call = call_of(request)
    opts = options_of(call.params, frozenset({"sysAttrs", "count"}))
    # options=count is count=true (as Orion-LD takes it; filip lists subscriptions so)
    count = flag(call.params, "count") or "count" in opts
    offset, limit = page_of(call.params, count, settings.default_page_size,
                            settings.max_page_size)
    tenant = await service.tenant(call)
    manager = manager_of(request)
    docs = await manager.of_tenant(tenant)
    headers = {RESULTS_COUNT: str(len(docs))} if count else {}
    reply = await _rendered(service, manager, call, docs[offset:offset + limit],
                            sys_attrs="sysAttrs" in opts, headers=headers)
    media = negotiate(call.accept, READ_MEDIA)
    reply.add_links(subscription_page_links(SUBSCRIPTIONS, call.params, offset, limit,
                                            len(docs), media))
    return response_of(reply, call)


# 5.8.3 Retrieve Subscription
async def retrieve_subscription(request: web.Request) -> web.Response:
    service = service_of(request)
    call = call_of(request)
    tenant = await service.tenant(call)
    manager = manager_of(request)
    doc = await manager.get(tenant, _sub_id(request))
    sys_attrs = "sysAttrs" in options_of(call.params, frozenset({"sysAttrs"}))
    reply = await _rendered(service, manager, call, [doc], sys_attrs=sys_attrs, one=True)
    return response_of(reply, call)


# 5.8.2 Update Subscription
async def update_subscription(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size,
                           (JSON, LD_JSON, MERGE_PATCH))
    call = call_of(request)
    tenant = await service.tenant(call)
    await manager_of(request).update(tenant, _sub_id(request), body.data, body.client_context)
    return response_of(empty(204, await link_only(service, body.client_context, tenant)), call)


# 5.8.5 Delete Subscription
async def delete_subscription(request: web.Request) -> web.Response:
    service = service_of(request)
    call = call_of(request)
    tenant = await service.tenant(call)
    sub_id = _sub_id(request)
    await manager_of(request).delete(tenant, sub_id)
    await request.app[DISTRIBUTED].deleted(tenant, sub_id)  # 5.8.5.4
    return response_of(empty(204), call)


def setup(app: web.Application) -> None:
    add_route(app, "POST", SUBSCRIPTIONS, create_subscription, "createSubscription")
    add_route(app, "GET", SUBSCRIPTIONS, query_subscriptions, "querySubscriptions")
    one = SUBSCRIPTIONS + "/{subscriptionId}"
    add_route(app, "GET", one, retrieve_subscription, "retrieveSubscription")
    add_route(app, "PATCH", one, update_subscription, "updateSubscription")
    add_route(app, "DELETE", one, delete_subscription, "deleteSubscription")
