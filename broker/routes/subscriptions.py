"""Subscriptions over HTTP: entity subscriptions (clause 5.8) and context source
registration subscriptions (clause 5.11), one set of adapters for both.

Both resources take the same requests and answer the same way (names compacted
with the client's @context, ``status`` derived, 6.3.10 paging of the list); they
differ in their path, their operation names and who keeps them: the
:class:`~subscriptions.SubscriptionManager` (under :data:`~broker.state.MANAGER`)
or the :class:`~subscriptions.registrations.RegistrationSubscriptions` (under
:data:`~broker.state.CSOURCE_SUBSCRIPTIONS`), both built by the composition root.
An entity subscription is also copied to the registered context sources
(5.8.1.4, 5.8.5.4: :data:`~broker.state.DISTRIBUTED`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import web

from broker.http import read_body
from broker.service import Call, Reply, Service, empty
from broker.service.answers import entity_reply, link_only
from broker.state import CSOURCE_SUBSCRIPTIONS, DISTRIBUTED, MANAGER, service_of
from broker.web import add_route, call_of, response_of
from ngsi_ld.attributes import is_iri
from ngsi_ld.bodies import JSON, LD_JSON, MERGE_PATCH
from ngsi_ld.errors import BadRequestData
from ngsi_ld.headers import negotiate, parse_link_context
from ngsi_ld.paging import page_of, subscription_page_links
from ngsi_ld.params import flag, options_of
from subscriptions import SubscriptionManager, compact_subscription
from subscriptions.state import Status

__all__ = ["CSOURCE_SUBSCRIPTIONS_PATH", "MANAGER", "SUBSCRIPTIONS", "SubscriptionBook",
           "SubscriptionResource", "manager_of", "setup"]

SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
CSOURCE_SUBSCRIPTIONS_PATH = "/ngsi-ld/v1/csourceSubscriptions"
READ_MEDIA = (JSON, LD_JSON)
RESULTS_COUNT = "NGSILD-Results-Count"


class SubscriptionBook(Protocol):
    """What keeps one kind of subscription: the operations the adapters call."""

    async def create(self, tenant: str, data: Any, context: Any) -> str: ...
    async def get(self, tenant: str, sub_id: str) -> dict[str, Any]: ...
    async def of_tenant(self, tenant: str) -> list[dict[str, Any]]: ...
    async def update(self, tenant: str, sub_id: str, data: Any, context: Any) -> None: ...
    async def delete(self, tenant: str, sub_id: str) -> None: ...
    def status(self, doc: dict[str, Any]) -> Status: ...


#: after a create: (request, tenant, subscription id, body, @context)
Created = Callable[[web.Request, str, str, Any, Any], Awaitable[None]]
#: after an update or a delete: (request, tenant, subscription id)
Changed = Callable[[web.Request, str, str], Awaitable[None]]


def manager_of(request: web.Request) -> SubscriptionManager:
    """The entity subscriptions of the app serving ``request``."""
    return request.app[MANAGER]


def _sub_id(request: web.Request) -> str:
    """The ``{subscriptionId}`` of the path: a URI, else BadRequestData (5.8.2 to 5.8.5)."""
    sub_id = request.match_info["subscriptionId"]
    if not is_iri(sub_id):
        raise BadRequestData(f"subscription id {sub_id!r} is not a URI")
    return sub_id


@dataclass(frozen=True)
class SubscriptionResource:
    """The five operations of one subscription resource, routed by :meth:`setup`."""

    path: str
    #: the book of the app serving a request
    book: Callable[[web.Application], SubscriptionBook]
    #: operation names: create, query, retrieve, update, delete (``ngsi_ld.parameters``)
    operations: tuple[str, str, str, str, str]
    created: Created | None = None
    updated: Changed | None = None
    deleted: Changed | None = None

    async def _rendered(self, service: Service, book: SubscriptionBook, call: Call,
                        docs: list[dict[str, Any]], *, sys_attrs: bool,
                        headers: dict[str, str] | None = None, one: bool = False) -> Reply:
        media = negotiate(call.accept, READ_MEDIA)
        client_context = parse_link_context(call.link)
        ctx = await service.resolver.active(client_context)
        out = [compact_subscription(doc, ctx.compact_iri, sys_attrs=sys_attrs,
                                    status=book.status(doc)) for doc in docs]
        return await entity_reply(service, out[0] if one else out, media, client_context,
                                  headers=headers, tenant=service.tenant_named(call))

    # 5.8.1 Create Subscription; 5.11.2 Create Context Source Registration Subscription
    async def create(self, request: web.Request) -> web.Response:
        service = service_of(request)
        body = await read_body(request, service.settings.max_body_size)
        call = call_of(request)
        tenant = await service.tenant(call, create=True)
        sub_id = await self.book(request.app).create(tenant, body.data, body.client_context)
        if self.created is not None:
            await self.created(request, tenant, sub_id, body.data, body.client_context)
        headers = {"Location": f"{self.path}/{quote(sub_id, safe=':')}",
                   **await link_only(service, body.client_context, tenant)}
        return response_of(empty(201, headers), call)

    # 5.8.4 Query Subscriptions; 5.11.5
    async def query(self, request: web.Request) -> web.Response:
        service = service_of(request)
        settings = service.settings
        call = call_of(request)
        opts = options_of(call.params, frozenset({"sysAttrs", "count"}))
        # options=count is count=true (as Orion-LD takes it; filip lists subscriptions so)
        count = flag(call.params, "count") or "count" in opts
        offset, limit = page_of(call.params, count, settings.default_page_size,
                                settings.max_page_size)
        media = negotiate(call.accept, READ_MEDIA)
        tenant = await service.tenant(call)
        book = self.book(request.app)
        docs = await book.of_tenant(tenant)
        headers = {RESULTS_COUNT: str(len(docs))} if count else {}
        reply = await self._rendered(service, book, call, docs[offset:offset + limit],
                                     sys_attrs="sysAttrs" in opts, headers=headers)
        reply.add_links(subscription_page_links(self.path, call.params, offset, limit,
                                                len(docs), media))
        return response_of(reply, call)

    # 5.8.3 Retrieve Subscription; 5.11.4
    async def retrieve(self, request: web.Request) -> web.Response:
        service = service_of(request)
        call = call_of(request)
        sub_id = _sub_id(request)
        tenant = await service.tenant(call)
        book = self.book(request.app)
        doc = await book.get(tenant, sub_id)
        sys_attrs = "sysAttrs" in options_of(call.params, frozenset({"sysAttrs"}))
        reply = await self._rendered(service, book, call, [doc], sys_attrs=sys_attrs,
                                     one=True)
        return response_of(reply, call)

    # 5.8.2 Update Subscription; 5.11.3
    async def update(self, request: web.Request) -> web.Response:
        service = service_of(request)
        body = await read_body(request, service.settings.max_body_size,
                               (JSON, LD_JSON, MERGE_PATCH))
        call = call_of(request)
        sub_id = _sub_id(request)
        tenant = await service.tenant(call)
        await self.book(request.app).update(tenant, sub_id, body.data, body.client_context)
        if self.updated is not None:
            await self.updated(request, tenant, sub_id)
        return response_of(empty(204, await link_only(service, body.client_context, tenant)),
                           call)

    # 5.8.5 Delete Subscription; 5.11.6
    async def delete(self, request: web.Request) -> web.Response:
        service = service_of(request)
        call = call_of(request)
        sub_id = _sub_id(request)
        tenant = await service.tenant(call)
        await self.book(request.app).delete(tenant, sub_id)
        if self.deleted is not None:
            await self.deleted(request, tenant, sub_id)
        return response_of(empty(204), call)

    def setup(self, app: web.Application) -> None:
        """Route the five operations on ``app``."""
        create, query, retrieve, update, delete = self.operations
        add_route(app, "POST", self.path, self.create, create)
        add_route(app, "GET", self.path, self.query, query)
        one = self.path + "/{subscriptionId}"
        add_route(app, "GET", one, self.retrieve, retrieve)
        add_route(app, "PATCH", one, self.update, update)
        add_route(app, "DELETE", one, self.delete, delete)


# 5.8.1.4: the registered sources get copies; 5.8.5.4: and lose them
async def _copy_to_sources(request: web.Request, tenant: str, sub_id: str, body: Any,
                           context: Any) -> None:
    await request.app[DISTRIBUTED].created(tenant, sub_id, body, context)


# 5.8.2 with 5.8.1.4: the copies follow the subscription's update
async def _update_at_sources(request: web.Request, tenant: str, sub_id: str) -> None:
    doc = request.app[MANAGER].document(tenant, sub_id)
    if doc is None:
        return
    context = doc.get("_context")
    ctx = await service_of(request).resolver.active(context)
    body = compact_subscription(doc, ctx.compact_iri, sys_attrs=False, status="")
    del body["status"]
    await request.app[DISTRIBUTED].updated(tenant, sub_id, body, context)


async def _drop_at_sources(request: web.Request, tenant: str, sub_id: str) -> None:
    await request.app[DISTRIBUTED].deleted(tenant, sub_id)


ENTITY_SUBSCRIPTIONS = SubscriptionResource(
    SUBSCRIPTIONS, lambda app: app[MANAGER],
    ("createSubscription", "querySubscriptions", "retrieveSubscription",
     "updateSubscription", "deleteSubscription"),
    created=_copy_to_sources, updated=_update_at_sources, deleted=_drop_at_sources)

REGISTRATION_SUBSCRIPTIONS = SubscriptionResource(
    CSOURCE_SUBSCRIPTIONS_PATH, lambda app: app[CSOURCE_SUBSCRIPTIONS],
    ("createCSourceRegistrationSubscription", "queryCSourceRegistrationSubscriptions",
     "retrieveCSourceRegistrationSubscription", "updateCSourceRegistrationSubscription",
     "deleteCSourceRegistrationSubscription"))


def setup(app: web.Application) -> None:
    """Route /subscriptions and /csourceSubscriptions."""
    ENTITY_SUBSCRIPTIONS.setup(app)
    REGISTRATION_SUBSCRIPTIONS.setup(app)
