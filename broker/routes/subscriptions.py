"""Clause 5.8 of ETSI GS CIM 009 v1.8: subscriptions (create, update, retrieve, query, delete).

The :class:`~subscriptions.SubscriptionManager` lives on the application; it
is started after the store opens and closed at shutdown, before the store closes.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlencode

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
from ngsi_ld.attributes import is_iri
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
    """The ``{subscriptionId}`` of the path: a URI, else BadRequestData (5.8.2 to 5.8.5)."""
    sub_id = request.match_info["subscriptionId"]
    if not is_iri(sub_id):
        raise BadRequestData(f"subscription id {sub_id!r} is not a URI")
    return sub_id


def _integer(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise BadRequestData(f"{name} must be a non-negative integer, not {raw!r}")
    return int(raw)


def paging_links(request: web.Request, offset: int, limit: int, total: int,
                 media: str) -> list[str]:
    """6.3.13 pagination: ``Link`` values for the previous and next pages, if any.

    The other query parameters are kept in their order, ``limit`` and ``offset`` last.
    """
    if limit <= 0:
        return []
    rest = [(k, v) for k, v in request.query.items() if k not in ("limit", "offset")]

    def link(at: int, rel: str) -> str:
        query = urlencode([*rest, ("limit", str(limit)), ("offset", str(at))])
        return f'<{SUBSCRIPTIONS}?{query}>; rel="{rel}"; type="{media}"'

    links = []
    if offset > 0:
        links.append(link(max(0, offset - limit), "prev"))
    if offset + limit < total:
        links.append(link(offset + limit, "next"))
    return links


async def _render(request: web.Request, docs: list[dict[str, Any]], *,
                  sys_attrs: bool) -> tuple[list[dict[str, Any]], str, Any]:
    broker = broker_of(request)
    media = negotiate(request.headers.get("Accept"), READ_MEDIA)
    context = parse_link_context(request.headers.get("Link"))
    ctx = await broker.resolver.active(context)
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
    opts = options(request, frozenset({"sysAttrs", "count"}))
    # options=count is count=true (as Orion-LD takes it; filip lists subscriptions so)
    count = flag(request, "count") or "count" in opts
    offset = _integer(request, "offset", 0)
    limit = _integer(request, "limit", settings.default_page_size)
    if limit > settings.max_page_size:
        raise TooManyResults(f"limit {limit} exceeds the maximum page size "
                             f"{settings.max_page_size}")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    tenant = await broker.tenant(request)
    docs = await manager_of(request).of_tenant(tenant)
    page, media, context = await _render(request, docs[offset:offset + limit],
                                         sys_attrs="sysAttrs" in opts)
    headers = {RESULTS_COUNT: str(len(docs))} if count else {}
    response = await respond(broker, page, media, context, headers=headers)
    links = paging_links(request, offset, limit, len(docs), media)
    if links:
        # one Link header: the @context link (JSON answers), then the pages
        response.headers["Link"] = ", ".join(filter(None, [response.headers.get("Link"),
                                                           *links]))
    return response


# 5.8.3 Retrieve Subscription
async def retrieve_subscription(request: web.Request) -> web.Response:
    broker = broker_of(request)
    tenant = await broker.tenant(request)
    doc = await manager_of(request).get(tenant, _sub_id(request))
    sys_attrs = "sysAttrs" in options(request, frozenset({"sysAttrs"}))
    rendered, media, context = await _render(request, [doc], sys_attrs=sys_attrs)
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
