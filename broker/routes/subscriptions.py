"""Clause 5.8 of ETSI GS CIM 009 v1.8: subscriptions (create, update, retrieve, query, delete).

The :class:`~subscriptions.SubscriptionManager` lives on the application; it
is started after the store opens and closed at shutdown, before the store closes.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from broker.app import add_route, broker_of
from broker.http import (
    JSON,
    LD_JSON,
    MERGE_PATCH,
    flag,
    negotiate,
    options,
    parse_link_context,
    read_body,
)
from broker.routes.common import link_only, respond
from ngsi_ld.errors import BadRequestData, TooManyResults
from subscriptions import Delivery, LeaseOwner, SubscriptionManager, compact_subscription
from subscriptions.repository import COLLECTION

log = logging.getLogger("broker.subscriptions")

SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
MANAGER = web.AppKey("subscriptions", SubscriptionManager)
READ_MEDIA = (JSON, LD_JSON)
RESULTS_COUNT = "NGSILD-Results-Count"


def manager_of(request: web.Request) -> SubscriptionManager:
    return request.app[MANAGER]


def _sub_id(request: web.Request) -> str:
    return request.match_info["subscriptionId"]


def _integer(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise BadRequestData(f"{name} must be a non-negative integer, not {raw!r}")
    return int(raw)


async def _render(request: web.Request, docs: list[dict[str, Any]]) -> tuple[
        list[dict[str, Any]], str, Any]:
    broker = broker_of(request)
    media = negotiate(request.headers.get("Accept"), READ_MEDIA)
    context = parse_link_context(request.headers.get("Link"))
    ctx = await broker.resolver.active(context)
    sys_attrs = "sysAttrs" in options(request, frozenset({"sysAttrs"}))
    manager = manager_of(request)
    out = [compact_subscription(doc, ctx.compact_iri, sys_attrs=sys_attrs,
                                status=manager.status(doc)) for doc in docs]
    return out, media, context


# 5.8.1 Create Subscription
async def create_subscription(request: web.Request) -> web.Response:
    broker = broker_of(request)
    body = await read_body(request, broker.settings.max_body_size)
    tenant = await broker.tenant(request, create=True)
    sub_id = await manager_of(request).create(tenant, body.data, body.context)
    headers = {"Location": f"{SUBSCRIPTIONS}/{quote(sub_id, safe=':')}",
               **await link_only(broker, body.context)}
    return web.Response(status=201, headers=headers)


# 5.8.4 Query Subscriptions
async def query_subscriptions(request: web.Request) -> web.Response:
    broker = broker_of(request)
    settings = broker.settings
    count = flag(request, "count")
    offset = _integer(request, "offset", 0)
    limit = _integer(request, "limit", settings.default_page_size)
    if limit > settings.max_page_size:
        raise TooManyResults(f"limit {limit} exceeds the maximum page size "
                             f"{settings.max_page_size}")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    tenant = await broker.tenant(request)
    docs = await manager_of(request).of_tenant(tenant)
    page, media, context = await _render(request, docs[offset:offset + limit])
    headers = {RESULTS_COUNT: str(len(docs))} if count else {}
    return await respond(broker, page, media, context, headers=headers)


# 5.8.3 Retrieve Subscription
async def retrieve_subscription(request: web.Request) -> web.Response:
    broker = broker_of(request)
    tenant = await broker.tenant(request)
    doc = await manager_of(request).get(tenant, _sub_id(request))
    rendered, media, context = await _render(request, [doc])
    return await respond(broker, rendered[0], media, context)


# 5.8.2 Update Subscription
async def update_subscription(request: web.Request) -> web.Response:
    broker = broker_of(request)
    body = await read_body(request, broker.settings.max_body_size,
                           (JSON, LD_JSON, MERGE_PATCH))
    tenant = await broker.tenant(request)
    await manager_of(request).update(tenant, _sub_id(request), body.data, body.context)
    return web.Response(status=204, headers=await link_only(broker, body.context))


# 5.8.5 Delete Subscription
async def delete_subscription(request: web.Request) -> web.Response:
    broker = broker_of(request)
    tenant = await broker.tenant(request)
    await manager_of(request).delete(tenant, _sub_id(request))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    """Routes, and the manager's start-up (after the store opens) and shutdown."""
    from broker.app import BROKER

    broker = app[BROKER]
    settings = broker.settings
    delivery = Delivery(
        retries=settings.notification_retries,
        backoff=settings.notification_backoff,
        default_timeout=settings.notification_timeout,
    )
    ownership = None
    if broker.node is not None:
        ownership = LeaseOwner(broker.node.store, broker.node.origin,
                               settings.cluster_lease_ttl)
    manager = SubscriptionManager(
        broker.store, broker.resolver, broker.metrics, delivery=delivery,
        queue_size=settings.notification_queue_size, ownership=ownership)
    app[MANAGER] = manager
    if broker.node is not None:
        broker.node.on_record(COLLECTION, manager.reload)
    unsubscribe = broker.events.subscribe(manager.on_change, concerns=manager.index.concerns)

    async def start(app: web.Application) -> None:
        await manager.start()

    async def stop(app: web.Application) -> None:
        unsubscribe()
        await manager.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    add_route(app, "POST", SUBSCRIPTIONS, create_subscription, "createSubscription")
    add_route(app, "GET", SUBSCRIPTIONS, query_subscriptions, "querySubscriptions")
    one = SUBSCRIPTIONS + "/{subscriptionId}"
    add_route(app, "GET", one, retrieve_subscription, "retrieveSubscription")
    add_route(app, "PATCH", one, update_subscription, "updateSubscription")
    add_route(app, "DELETE", one, delete_subscription, "deleteSubscription")
